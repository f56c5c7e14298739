"""How a column shows that it holds personal data: by its name, or by what its values look like.

The rules of the governance gate (dwml_py.governance), which the catalog, search and lineage use
too, so every command calls the same column PII:

* **name**: the column's name says so (email, phone, ssn, dob, birth_date, first/last/full_name,
  address, zip/postcode, ip_address, credit_card, iban, passport, national_id, tax_id, ...).
  Names are split into words (snake_case, camelCase, digits), and a PII term must appear as
  whole words: `email_address` and `customerEmail` match, `emailed` does not. A name that also
  holds a word of counting or flagging (`count`, `is`, `has`, `verified`, `domain`, `rate`,
  `opt`, ...) describes the data rather than holding it, so `phone_count`, `has_email` and
  `email_domain` are not flagged by name.
* **values**: a small sample of a string column is matched against e-mail addresses, phone
  numbers, payment card numbers (Luhn), US social security and UK national insurance numbers,
  IBANs (mod-97) and IP addresses; the column is flagged when a share of its non-null sampled
  values of one kind reaches `min_match_share`.

>>> name_pii("social_security_number"), value_kind("ana@example.com")
(('national_id', 'social_security'), 'email')
"""

from __future__ import annotations

import ipaddress
import re

from sqlglot import exp

from dwml_py import sql as sqlmod

DEFAULT_SAMPLE_ROWS = 1000
DEFAULT_MIN_MATCH_SHARE = 0.5

# -- the name route ---------------------------------------------------------------------------

# (words of the term, kind of PII). Longer terms are tried first, so `ip_address` is an IP address
# rather than a postal address, and `email_address` an e-mail address.
_NAME_TERMS: list[tuple[tuple[str, ...], str]] = [
    (("email",), "email"), (("e", "mail"), "email"), (("email", "address"), "email"),
    (("mail", "address"), "email"),
    (("phone",), "phone"), (("telephone",), "phone"), (("mobile",), "phone"), (("cellphone",), "phone"),
    (("msisdn",), "phone"), (("fax",), "phone"),
    (("ssn",), "national_id"), (("social", "security"), "national_id"), (("national", "id"), "national_id"),
    (("national", "insurance"), "national_id"), (("nino",), "national_id"), (("tax", "id"), "national_id"),
    (("taxpayer", "id"), "national_id"), (("passport",), "passport"),
    (("driver", "license"), "national_id"), (("drivers", "license"), "national_id"),
    (("driving", "licence"), "national_id"),
    (("dob",), "birth_date"), (("birth", "date"), "birth_date"), (("date", "of", "birth"), "birth_date"),
    (("birthdate",), "birth_date"), (("birthday",), "birth_date"),
    (("first", "name"), "name"), (("last", "name"), "name"), (("full", "name"), "name"),
    (("middle", "name"), "name"), (("maiden", "name"), "name"), (("given", "name"), "name"),
    (("family", "name"), "name"), (("firstname",), "name"), (("lastname",), "name"),
    (("fullname",), "name"), (("surname",), "name"),
    (("address",), "address"), (("street",), "address"), (("zip",), "address"), (("zipcode",), "address"),
    (("postcode",), "address"), (("postal", "code"), "address"), (("post", "code"), "address"),
    (("ip", "address"), "ip_address"), (("ip",), "ip_address"), (("ipv4",), "ip_address"),
    (("ipv6",), "ip_address"),
    (("credit", "card"), "payment_card"), (("card", "number"), "payment_card"), (("cc", "number"), "payment_card"),
    (("pan",), "payment_card"), (("iban",), "bank_account"), (("account", "number"), "bank_account"),
    (("bank", "account"), "bank_account"),
]
_NAME_TERMS.sort(key=lambda t: -len(t[0]))
_TERM_WORDS = frozenset(w for words, _ in _NAME_TERMS for w in words)
# (priority, term, kind) by the term's first word: a name is checked only against the terms that
# can start at one of its words (a catalog of 100,000 columns asks this of every one).
_TERMS_BY_FIRST: dict[str, list[tuple[int, tuple[str, ...], str]]] = {}
for _i, (_term, _kind) in enumerate(_NAME_TERMS):
    _TERMS_BY_FIRST.setdefault(_term[0], []).append((_i, _term, _kind))
# Every term has a word of two letters or more, found in the lower-cased name wherever the term
# matches: most names are ruled out by one regex search, before they are split into words.
_ANCHORS = re.compile("|".join(sorted((re.escape(w) for w in _TERM_WORDS if len(w) > 1 and w != "of"),
                                      key=len, reverse=True)))
# Words that make a name describe the data instead of holding it: counts, flags, shares, parts.
DERIVED_WORDS = frozenset({
    "count", "counts", "cnt", "num", "n", "nb", "total", "sum", "avg", "mean", "min", "max", "distinct",
    "is", "has", "flag", "verified", "valid", "validated", "bounced", "provided", "missing", "known",
    "present", "domain", "type", "kind", "length", "len", "rate", "share", "pct", "ratio",
    "opt", "optin", "consent", "changes", "changed", "days", "since", "country", "region",
    "sent", "received", "opened", "clicked", "delivered", "calls", "made",
})


def name_words(name: str) -> list[str]:
    """A column name as lower-case words: snake_case, camelCase and digits split.

    >>> name_words("customerEmail_2"), name_words("E_Mail"), name_words("IPAddress")
    (['customer', 'email', '2'], ['e', 'mail'], ['ip', 'address'])
    """
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+", str(name))
    out = []
    for word in (w.lower() for w in words):
        # plural of a PII word: `emails`, `phones`
        out.append(word[:-1] if word.endswith("s") and word[:-1] in _TERM_WORDS else word)
    return out


def name_pii(name: str) -> tuple[str, str] | None:
    """(kind of PII, matched term) when the column name says it holds PII, else None.

    >>> name_pii("billing_email"), name_pii("phone_count"), name_pii("ip_address"), name_pii("emailed")
    (('email', 'email'), None, ('ip_address', 'ip_address'), None)
    """
    if not _ANCHORS.search(str(name).lower()):
        return None
    words = name_words(name)
    if _TERM_WORDS.isdisjoint(words) or not DERIVED_WORDS.isdisjoint(words):
        return None
    candidates = sorted({c for w in set(words) for c in _TERMS_BY_FIRST.get(w, ())})  # longest terms first
    for _, term, kind in candidates:
        n = len(term)
        if any(tuple(words[i:i + n]) == term for i in range(len(words) - n + 1)):
            return kind, "_".join(term)
    return None


# -- the values route -------------------------------------------------------------------------

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_PHONE_INTL = re.compile(r"^\+\d[\d\s().-]{5,20}\d$")
_PHONE_GROUPED = re.compile(r"^(?:\(\d{2,5}\)\s?|\d{2,5}[\s.-])\d{2,5}(?:[\s.-]\d{2,5}){0,3}$")
_DATE_LIKE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}$")
_NINO = re.compile(r"^(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$")

VALUE_KINDS = ("email", "phone", "payment_card", "national_id", "bank_account", "ip_address")


def luhn_valid(number: str) -> bool:
    """The Luhn checksum of a digit string (spaces and dashes ignored), as card numbers carry it.

    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(c) for c in str(number) if c.isdigit()]
    if len(digits) < 2 or len(digits) != len(re.sub(r"[\s-]", "", str(number))):
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    rearranged = value[4:] + value[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def value_kind(value) -> str | None:
    """The kind of PII one value looks like, or None.

    >>> [value_kind(v) for v in ("ana@example.com", "+44 20 7946 0958", "4111111111111111",
    ...                          "4111111111111112", "078-05-1120", "10.0.0.1", "hello")]
    ['email', 'phone', 'payment_card', None, 'national_id', 'ip_address', None]
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > 254:
        return None
    if "@" in text:
        return "email" if _EMAIL.match(text) else None
    if _CARD.match(text):
        digits = re.sub(r"\D", "", text)
        # a card network's first digit (2-6) and a valid checksum; all-equal digits pass Luhn trivially
        if digits[0] in "23456" and len(set(digits)) > 1 and luhn_valid(text):
            return "payment_card"
    if _SSN.match(text) or _NINO.match(text.upper()):
        return "national_id"
    compact = text.replace(" ", "").upper()
    if _IBAN.match(compact) and _iban_valid(compact):
        return "bank_account"
    if ("." in text or ":" in text) and _is_ip(text):
        return "ip_address"
    if not _DATE_LIKE.match(text) and (_PHONE_INTL.match(text) or _PHONE_GROUPED.match(text)):
        digits = sum(c.isdigit() for c in text)
        if 7 <= digits <= 15:  # E.164 allows at most 15 digits
            return "phone"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def value_shares(values) -> tuple[int, dict[str, float]]:
    """(non-null values seen, share of them per PII kind found)."""
    seen = 0
    counts: dict[str, int] = {}
    for value in values:
        if value is None:
            continue
        seen += 1
        kind = value_kind(value)
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return seen, {k: c / seen for k, c in counts.items()} if seen else {}


def sample_string_columns(warehouse, schema: str, table: str, columns: list[str], rows: int) -> dict[str, list]:
    """The first `rows` values of each column, in one query inside the warehouse."""
    if not columns or rows <= 0:
        return {}
    query = exp.select(*[sqlmod.column(c) for c in columns]).from_(sqlmod.table(schema, table)).limit(int(rows))
    data = warehouse.fetch_arrow(query)
    return {c: data.column(i).to_pylist() for i, c in enumerate(columns)}


def is_string_type(data_type: str | None) -> bool:
    lowered = str(data_type or "").lower()
    return any(word in lowered for word in ("char", "text", "string", "varchar")) and "[]" not in lowered


def values_pii(values, min_match_share: float = DEFAULT_MIN_MATCH_SHARE) -> tuple[str, float, int] | None:
    """(kind, share of the non-null values of that kind, values seen) when the most frequent kind
    reaches `min_match_share`, else None."""
    seen, shares = value_shares(values)
    if not shares:
        return None
    kind, share = max(shares.items(), key=lambda kv: kv[1])
    return (kind, share, seen) if share >= min_match_share else None
