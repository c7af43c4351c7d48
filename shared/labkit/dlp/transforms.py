"""Primitive transformations of deidentify_content and reidentify_content, with real crypto.

Semantics from the PrimitiveTransformation messages in google/privacy/dlp/v2/dlp.proto
(https://cloud.google.com/sensitive-data-protection/docs/reference/rpc/google.privacy.dlp.v2)
and https://cloud.google.com/sensitive-data-protection/docs/transformations-reference:
- crypto_hash_config: HMAC-SHA-256 with the key, base64 output; an unwrapped key is 32 or
  64 bytes.
- crypto_deterministic_config: AES-SIV; "the provided key is internally expanded to 64 bytes
  prior to use" (Google does not document how: here HKDF-SHA-256, so surrogates differ from
  Google's, which no one can compare anyway); the surrogate reads
  SURROGATE_TYPE(<length of the encrypted text>):<base64 of the ciphertext>.
- A transient key is random, one per name, "discarded after the request finishes": what it
  encrypted cannot be re-identified in a later request (use an unwrapped or KMS key for that).
- date_shift_config: a shift within [lower_bound_days, upper_bound_days] (at most 365250 each
  way), random unless context and crypto_key make it the same for the same context value.
- fixed_size_bucketing_config: "lower-upper" strings, with "-lower" below and "upper+" above
  the bounds (the documented example: -10, 10-20, ..., 80-89, 89+).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import os
import random
import re

from labkit.dlp.inspection import DlpError

MAX_SHIFT_DAYS = 365250


class Keys:
    """The data keys of one request: a transient key's name maps to one random key."""

    def __init__(self):
        self._transient: dict[str, bytes] = {}

    def key(self, crypto_key, sizes: tuple[int, ...], what: str) -> bytes:
        from google.cloud import dlp_v2

        kind = dlp_v2.CryptoKey.pb(crypto_key).WhichOneof("source") if crypto_key else None
        if kind == "transient":
            if not crypto_key.transient.name:
                raise DlpError("TransientCryptoKey name must be set.")
            return self._transient.setdefault(crypto_key.transient.name, os.urandom(32))
        if kind == "unwrapped":
            key = bytes(crypto_key.unwrapped.key)
            if len(key) not in sizes:
                raise DlpError(f"{what}: the unwrapped crypto key must be "
                               f"{' or '.join(map(str, sizes))} bytes long, got {len(key)}.")
            return key
        if kind == "kms_wrapped":
            raise DlpError("KMS-wrapped crypto keys need Cloud KMS, which is not available on "
                           "the local Sensitive Data Protection; it runs with LAB_BACKEND=gcp. "
                           "Use a transient or unwrapped key locally.", "UNIMPLEMENTED")
        raise DlpError(f"{what}: crypto_key must be set.")


def _kind(primitive) -> str:
    from google.cloud import dlp_v2

    kind = dlp_v2.PrimitiveTransformation.pb(primitive).WhichOneof("transformation")
    if kind is None:
        raise DlpError("PrimitiveTransformation must have a transformation set.")
    return kind


def value_as_text(value) -> str:
    from labkit.dlp.inspection import value_text

    return value_text(value)


def _number(value):
    from google.cloud import dlp_v2

    kind = dlp_v2.Value.pb(value).WhichOneof("type")
    if kind == "integer_value":
        return value.integer_value
    if kind == "float_value":
        return value.float_value
    if kind == "string_value":
        try:
            return float(value.string_value) if "." in value.string_value \
                else int(value.string_value)
        except ValueError:
            return None
    return None


def _format_bound(x) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# ---- character masking
_COMMON = {1: str.isdigit, 2: lambda c: c.isascii() and c.isupper(),
           3: lambda c: c.isascii() and c.islower(),
           4: lambda c: c.isascii() and not c.isalnum() and not c.isspace() and c.isprintable(),
           5: str.isspace}


def mask(text: str, config) -> str:
    masking = config.masking_character or "*"
    if len(masking) != 1:
        raise DlpError("masking_character must be a single character.")
    ignored = []
    for chars in config.characters_to_ignore:
        if chars.characters_to_skip:
            ignored.append(lambda c, s=chars.characters_to_skip: c in s)
        elif chars.common_characters_to_ignore:
            ignored.append(_COMMON[int(chars.common_characters_to_ignore)])
    maskable = [i for i, c in enumerate(text) if not any(test(c) for test in ignored)]
    n = config.number_to_mask
    count = len(maskable) if n == 0 else (min(n, len(maskable)) if n > 0
                                          else max(len(maskable) + n, 0))
    chosen = maskable[::-1][:count] if config.reverse_order else maskable[:count]
    out = list(text)
    for i in chosen:
        out[i] = masking
    return "".join(out)


# ---- dates
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def _parse_date(text: str):
    if m := _ISO.match(text):
        return datetime.date(int(m[1]), int(m[2]), int(m[3])), "iso"
    if m := _US.match(text):
        return datetime.date(int(m[3]), int(m[1]), int(m[2])), "us"
    for fmt in ("%B %d, %Y", "%B %d %Y", "%b %d, %Y", "%b %d %Y"):
        try:
            return datetime.datetime.strptime(text, fmt).date(), fmt
        except ValueError:
            continue
    return None, None


def _format_date(d: datetime.date, form: str) -> str:
    if form == "iso":
        return d.isoformat()
    if form == "us":
        return f"{d.month:02d}/{d.day:02d}/{d.year}"
    return d.strftime(form)


def check(primitive, with_info_types: bool) -> None:
    """Refuses a config DLP refuses, before anything is transformed."""
    kind = _kind(primitive)
    if kind == "replace_with_info_type_config" and not with_info_types:
        raise DlpError("ReplaceWithInfoTypeConfig can only be used with infoType "
                       "transformations.")
    if kind == "date_shift_config":
        c = primitive.date_shift_config
        if abs(c.upper_bound_days) > MAX_SHIFT_DAYS or abs(c.lower_bound_days) > MAX_SHIFT_DAYS:
            raise DlpError(f"DateShiftConfig bounds must be within {MAX_SHIFT_DAYS} days "
                           f"(1000 years) in each direction.")
        if c.lower_bound_days > c.upper_bound_days:
            raise DlpError("DateShiftConfig lower_bound_days must not be greater than "
                           "upper_bound_days.")
        if bool(c.context.name) != bool(c.crypto_key):
            raise DlpError("DateShiftConfig context and crypto_key must be set together.")
    if kind == "fixed_size_bucketing_config":
        c = primitive.fixed_size_bucketing_config
        low, high = _number(c.lower_bound), _number(c.upper_bound)
        if low is None or high is None:
            raise DlpError("FixedSizeBucketingConfig lower_bound and upper_bound must be "
                           "numbers.")
        if c.bucket_size <= 0:
            raise DlpError("FixedSizeBucketingConfig bucket_size must be greater than 0.")
        if low >= high:
            raise DlpError("FixedSizeBucketingConfig lower_bound must be less than "
                           "upper_bound.")
    if kind == "bucketing_config":
        if not primitive.bucketing_config.buckets:
            raise DlpError("BucketingConfig must have at least one bucket.")
        for b in primitive.bucketing_config.buckets:
            if not b.replacement_value:
                raise DlpError("Bucket replacement_value must be set.")
    if kind == "character_mask_config" and len(primitive.character_mask_config
                                               .masking_character) > 1:
        raise DlpError("masking_character must be a single character.")
    if kind in ("crypto_replace_ffx_fpe_config", "time_part_config",
                "replace_dictionary_config"):
        raise DlpError(f"{kind} is not available on the local Sensitive Data Protection; "
                       f"it runs with LAB_BACKEND=gcp.", "UNIMPLEMENTED")


def _siv_key(key: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 64, salt=None, info=b"dlp-deterministic").derive(key)


def apply(primitive, value, keys: Keys, *, info_type: str | None = None,
          context: str | None = None, reverse: bool = False):
    """The transformed dlp_v2.Value of `value` (a dlp_v2.Value)."""
    from google.cloud import dlp_v2

    kind = _kind(primitive)
    text = value_as_text(value)
    if kind == "replace_config":
        return dlp_v2.Value(primitive.replace_config.new_value)
    if kind == "redact_config":
        return dlp_v2.Value(string_value="")
    if kind == "replace_with_info_type_config":
        return dlp_v2.Value(string_value=f"[{info_type}]")
    if kind == "character_mask_config":
        return dlp_v2.Value(string_value=mask(text, primitive.character_mask_config))
    if kind == "crypto_hash_config":
        key = keys.key(primitive.crypto_hash_config.crypto_key, (32, 64), "CryptoHashConfig")
        digest = hmac.new(key, text.encode(), hashlib.sha256).digest()
        return dlp_v2.Value(string_value=base64.b64encode(digest).decode())
    if kind == "crypto_deterministic_config":
        return dlp_v2.Value(string_value=_deterministic(
            primitive.crypto_deterministic_config, text, keys, context, reverse))
    if kind == "date_shift_config":
        return _date_shift(primitive.date_shift_config, value, text, keys, context)
    if kind == "fixed_size_bucketing_config":
        c = primitive.fixed_size_bucketing_config
        x = _number(value) if dlp_v2.Value.pb(value).WhichOneof("type") else None
        if x is None:
            x = _number(dlp_v2.Value(string_value=text))
        if x is None:
            raise DlpError(f'FixedSizeBucketingConfig applies to numbers; "{text}" is not one.')
        low, high, size = _number(c.lower_bound), _number(c.upper_bound), c.bucket_size
        if x < low:
            return dlp_v2.Value(string_value=f"-{_format_bound(low)}")
        if x >= high:
            return dlp_v2.Value(string_value=f"{_format_bound(high)}+")
        start = low + size * int((x - low) // size)
        return dlp_v2.Value(string_value=f"{_format_bound(start)}-"
                                         f"{_format_bound(min(start + size, high))}")
    if kind == "bucketing_config":
        x = _number(value)
        for bucket in primitive.bucketing_config.buckets:
            low = _number(bucket.min_) if "min_" in bucket else None
            high = _number(bucket.max_) if "max_" in bucket else None
            if x is not None and (low is None or x >= low) and (high is None or x < high):
                return dlp_v2.Value(bucket.replacement_value)
        return value  # a value in no bucket is left as it is
    raise DlpError(f"{kind} is not available on the local Sensitive Data Protection; it runs "
                   f"with LAB_BACKEND=gcp.", "UNIMPLEMENTED")


def _deterministic(config, text: str, keys: Keys, context: str | None, reverse: bool) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESSIV

    key = keys.key(config.crypto_key, (16, 24, 32), "CryptoDeterministicConfig")
    siv = AESSIV(_siv_key(key))
    associated = [context.encode()] if context is not None else None
    surrogate = config.surrogate_info_type.name
    if not reverse:
        encrypted = base64.b64encode(siv.encrypt(text.encode(), associated)).decode()
        return f"{surrogate}({len(encrypted)}):{encrypted}" if surrogate else encrypted
    body = text
    if surrogate:
        m = re.fullmatch(rf"{re.escape(surrogate)}\((\d+)\):(.*)", text, re.S)
        if not m or int(m[1]) != len(m[2]):
            raise DlpError(f"Re-identification failed: {text[:40]!r} is not a "
                           f"{surrogate} surrogate.", "FAILED_PRECONDITION")
        body = m[2]
    from cryptography.exceptions import InvalidTag

    try:
        return siv.decrypt(base64.b64decode(body, validate=True), associated).decode()
    except (InvalidTag, ValueError):
        raise DlpError("Re-identification failed: the value was not encrypted with this "
                       "key and context (a transient key lasts one request).",
                       "FAILED_PRECONDITION") from None


def _date_shift(config, value, text: str, keys: Keys, context: str | None):
    from google.cloud import dlp_v2
    from google.type import date_pb2

    low, high = config.lower_bound_days, config.upper_bound_days
    if config.crypto_key and context is not None:
        key = keys.key(config.crypto_key, (16, 24, 32), "DateShiftConfig")
        seed = int.from_bytes(hmac.new(key, context.encode(), hashlib.sha256).digest()[:8])
        days = low + seed % (high - low + 1)
    else:
        days = random.randint(low, high)
    if dlp_v2.Value.pb(value).WhichOneof("type") == "date_value":
        d = value.date_value
        shifted = datetime.date(d.year, d.month, d.day) + datetime.timedelta(days=days)
        return dlp_v2.Value(date_value=date_pb2.Date(year=shifted.year, month=shifted.month,
                                                     day=shifted.day))
    parsed, form = _parse_date(text)
    if parsed is None:
        raise DlpError(f'DateShiftConfig applies to dates; "{text}" is not a date.')
    return dlp_v2.Value(string_value=_format_date(parsed + datetime.timedelta(days=days), form))
