{{ config(materialized='view', tags=['dwml_monitoring']) }}

-- The demo churn model's performance on matured labels (dwml.performance_metrics, through the
-- dwml_performance_metrics view): the anchor of its performance alerts in _monitoring.yml.

select * from {{ ref('dwml_performance_metrics') }}
where model_name = 'churn'
