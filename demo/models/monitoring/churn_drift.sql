{{ config(materialized='view', tags=['dwml_monitoring']) }}

-- The demo churn model's drift statistics (dwml.drift_metrics, through the dwml_drift_metrics
-- view): the anchor of its drift alerts in _monitoring.yml. A view, so it is always current;
-- tagged dwml_monitoring, so `dbt test --select tag:dwml_monitoring` runs the alerts after
-- `dwml monitor` (the demo's own `dbt build` leaves them out: see _monitoring.yml).

select * from {{ ref('dwml_drift_metrics') }}
where model_name = 'churn'
