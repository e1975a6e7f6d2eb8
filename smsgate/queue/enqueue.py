"""Admission of outbound messages: the checks a message passes before it is queued, and the two ways rows
are written (one message with its parts, or a campaign in one pass of plain INSERTs).

`Outbox.enqueue` and `Outbox.enqueue_many` decide; the functions here check and write, inside the
transaction the caller holds.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from smsgate.numbers import InvalidNumber, normalize

from .audit import AuditLog
from .clock import ts
from .db import Db
from .errors import IdempotencyConflict, MessageRejected, StoreError
from .records import Kind

_TS_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
# What a message text may not hold: C0 controls but LF and CR (the GSM 7-bit alphabet has both, and a
# reminder is often two lines), DEL, C1 controls, and lone UTF-16 surrogates (half an emoji: not Unicode
# text at all, and SQLite cannot even store it as UTF-8).
_UNSENDABLE = re.compile("[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_NAMES = {"\x00": "a NUL character", "\t": "a tab", "\x1b": "an ESC character", "\x7f": "a DEL character"}


def checked_ts(text: str) -> str:
    if not _TS_TEXT.fullmatch(text):
        raise ValueError(f"not a store timestamp: {text!r}")
    return text


_SENTENCE_ENDED = re.compile(r"""[.!?\u2026][\"')\]\u201d\u2019\u00bb]*$""")
_URL_AT_END = re.compile(r"(?i)(?:[a-z][a-z0-9+.-]*://|www\.)\S*$")


def with_footer(text: str, footer: str | None) -> str:
    """`text` with the first-message footer as a sentence of its own.

    After a sentence that ended (". ! ? …", perhaps inside quotes) a space; after anything else (a bare word,
    a number, an emoji, a URL) a new line, so "Reply YES to confirm" never runs on into "Reply STOP" and a
    phone never takes the footer for part of a link. Both cost one GSM-7 septet and neither changes the
    encoding; trailing spaces of the text are dropped.
    """
    if not footer or not footer.strip():
        return text
    body = text.rstrip(" \t")
    if body.endswith("\n"):
        separator = ""
    elif _SENTENCE_ENDED.search(body) and not _URL_AT_END.search(body):
        separator = " "
    else:
        separator = "\n"
    return f"{body}{separator}{footer.strip()}"


def text_problem(text: str) -> str | None:
    """Why `text` cannot go out as an SMS (a sentence naming the character and where it is), or None.

    A NUL or other control character is almost always a bug upstream (a C string, a pasted spreadsheet
    cell); a tab is not in the GSM alphabet, would force the costlier UCS-2 encoding, and shows as a box
    on many phones. Refusing them while the sender can still fix the text beats sending what the patient
    cannot read.
    """
    found = _UNSENDABLE.search(text)
    if found is None:
        return None
    char, where = found.group(), found.start() + 1
    code = f"U+{ord(char):04X}"
    if "\ud800" <= char <= "\udfff":
        return (f"it holds a lone UTF-16 surrogate ({code}) at character {where}, which is not valid Unicode "
                "(often half of an emoji cut in two); send the text as valid UTF-8")
    name = _CONTROL_NAMES.get(char, "a control character")
    return (f"it holds {name} ({code}) at character {where}; an SMS may hold line breaks but no other "
            "control characters, so remove it (use spaces instead of tabs)")


def check_answers(expect: Mapping[str, str] | None, follow_up: Mapping[str, str] | None) -> None:
    """An empty answer word never matches a reply and an empty outcome records nothing, so the mistake
    would only show weeks later as "no answer"; refuse it while the sender can still fix it."""
    for what, mapping in (("expected answer", expect), ("follow-up", follow_up)):
        for word, value in (mapping or {}).items():
            if not str(word).strip() or not str(value).strip():
                raise MessageRejected(f"{what} {word!r}: {value!r} needs both a word and what it leads to, "
                                      'e.g. {"YES": "confirmed"}')
            problem = text_problem(str(word)) or text_problem(str(value))
            if problem is not None:
                raise MessageRejected(f"{what} {word!r}: {problem}")


# What a replay is compared on, with the words a conflict names each by.
_REPLAY_FIELDS = {"to_number": "recipient", "body": "text", "kind": "kind", "not_before": "send time (not_before)",
                  "expect": "expected answers", "follow_up": "follow-up replies", "scope": "consent scope",
                  "campaign": "campaign", "in_reply_to": "message it replies to",
                  "required_modem_id": "required SIM"}


def replay_differences(stored: Mapping[str, Any], request: Mapping[str, Any]) -> list[str]:
    """What a request repeating an idempotency key changed, in words (empty: it is the same request).

    `request["body"]` is the texts it may have been stored as (with or without the first-message footer);
    `expect` and `follow_up` are maps, compared with the JSON stored for them.
    """
    out = []
    for column, words in _REPLAY_FIELDS.items():
        value, have = request[column], stored[column]
        if column == "body":
            same = have in value
        elif column in ("expect", "follow_up"):
            same = (json.loads(have) if have else None) == (dict(value) if value else None)
        else:
            same = have == value
        if not same:
            out.append(words)
    return out


def segment(text: str) -> tuple[int, str]:
    """(parts, encoding) for `text`, from the PDU codec's own segmentation."""
    from smsgate.at_commands.pdu import preview

    p = preview(text)
    return p.parts, p.encoding


def check_number(to: str, default_region: str | None) -> str:
    try:
        return normalize(to, default_region=default_region)
    except InvalidNumber as exc:
        raise MessageRejected(str(exc)) from None


def check_text(text: str, max_parts: int) -> tuple[int, str]:
    if text is None or not str(text).strip():
        raise MessageRejected("the text is empty; write what the patient should read")
    problem = text_problem(text)
    if problem is not None:
        raise MessageRejected(f"the text cannot be sent: {problem}")
    parts, encoding = segment(text)
    if parts > max_parts:
        raise MessageRejected(
            f"the text needs {parts} SMS parts ({encoding}) but at most {max_parts} are allowed; "
            "shorten it, or raise sending.max_parts in the configuration"
        )
    return parts, encoding


def insert_message(db: Db, *, number: str, text: str, kind: Kind, parts: int, encoding: str,
                   now: datetime, not_before: datetime | None, **extra: Any) -> int:
    due = ts(not_before) if not_before and not_before > now else ts(now)
    cur = db.execute(
        "INSERT INTO messages (to_number, body, kind, priority, parts_total, encoding, concat_ref,"
        " max_attempts, not_before, due_at, idempotency_key, idempotency_scope, created_by, source, expect,"
        " follow_up, in_reply_to, preferred_modem_id, required_modem_id, campaign, scope, status_report,"
        " conversation_id, created_at, updated_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            number, text, kind.value, int(kind.priority), parts, encoding, random.randint(0, 255),
            extra["max_attempts"], ts(not_before) if not_before else None, due,
            extra["idempotency_key"], extra["idempotency_scope"], extra["created_by"], extra["source"],
            json.dumps(dict(extra["expect"])) if extra["expect"] else None,
            json.dumps(dict(extra["follow_up"])) if extra["follow_up"] else None,
            extra["in_reply_to"], extra["preferred_modem_id"], extra["required_modem_id"],
            extra["campaign"], extra["scope"], int(extra["status_report"]), extra["conversation_id"],
            ts(now), ts(now),
        ),
    )
    msg_id = int(cur.lastrowid or 0)
    db.executemany(
        "INSERT INTO message_parts (message_id, part_no, recipient) VALUES (?, ?, ?)",
        ((msg_id, n, number) for n in range(1, parts + 1)),
    )
    return msg_id


def insert_bulk(db: Db, audit: AuditLog, rows: list[tuple[Any, ...]], kind_v: str, prio: int, max_attempts: int,
                created_by: str, source: str, campaign: str | None, now_s: str, *,
                scope: str | None = None) -> list[int]:
    """Write a campaign's checked rows (number, text, parts, encoding, not_before, due, key) in one
    transaction; returns one id per row, an earlier message's id for a key already used the same way.
    Keys belong to `created_by`, as a single message's do."""
    with db.transaction():
        result: list[int | None] = [None] * len(rows)
        fresh: list[int] = []  # indexes of rows to insert
        same_as: dict[int, int] = {}  # row index -> index of the earlier row with its key
        keyed = [r[6] for r in rows if r[6] is not None]
        if keyed:
            known = known_keys(db, created_by, keyed)
            first_row: dict[str, int] = {}
            for idx, r in enumerate(rows):
                key = r[6]
                if key is None:
                    fresh.append(idx)
                    continue
                hit = known.get(key)
                earlier = first_row.get(key)
                asked = (r[0], r[1], kind_v)
                prior = hit[1:] if hit else (*rows[earlier][:2], kind_v) if earlier is not None else None
                if prior is not None and prior != asked:
                    where = f"message #{hit[0]}" if hit else f"row {(earlier or 0) + 1}"
                    what = " and ".join(word for word, had, has in zip(("recipient", "text", "kind"), prior, asked,
                                                                       strict=True) if had != has)
                    raise IdempotencyConflict(
                        f"row {idx + 1}: idempotency key {key!r} was already used for {where} with a "
                        f"different {what}; use a new key. Nothing was queued."
                    )
                if hit:
                    result[idx] = hit[0]
                elif earlier is not None:
                    same_as[idx] = earlier
                else:
                    first_row[key] = idx
                    fresh.append(idx)
        else:
            fresh = list(range(len(rows)))
        # Values the same for every row and made by this code (an enum value, two integers, a timestamp
        # from ts()) are written into the statement once instead of being bound 100,000 times; anything
        # a person typed (creator, source, campaign name) stays a bound parameter.
        constants = f"'{Kind(kind_v).value}', {int(prio)}, {int(max_attempts)}, '{checked_ts(now_s)}'"
        batch = (created_by, source, campaign, scope)
        keyed_batch = (created_by, *batch)  # a keyed row's idempotency_scope is its creator
        ids = db.append_rows(
            "messages",
            "INSERT INTO messages (to_number, body, parts_total, encoding, not_before, due_at, idempotency_key,"
            " idempotency_scope, created_by, source, campaign, scope, kind, priority, max_attempts, created_at,"
            " updated_at, concat_ref)"
            f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {constants}, '{checked_ts(now_s)}', {db.RANDOM_OCTET})",
            (rows[i] + (keyed_batch if rows[i][6] is not None else (None, *batch)) for i in fresh), len(fresh),
        )
        for idx, mid in zip(fresh, ids, strict=True):
            result[idx] = mid
        for idx, earlier in same_as.items():
            result[idx] = result[earlier]
        audit.record(created_by, "campaign.enqueue", "campaign", None,
                     {"campaign": campaign, "count": len(ids), "first_id": ids[0] if ids else None,
                      "last_id": ids[-1] if ids else None})
        if any(x is None for x in result):
            raise StoreError("a campaign row was left without a message id; nothing was queued")
    return [int(x or 0) for x in result]


def known_keys(db: Db, scope: str, keys: list[str]) -> dict[str, tuple[int, str, str, str]]:
    """Existing messages by idempotency key within `scope`: key -> (id, to_number, body, kind)."""
    out: dict[str, tuple[int, str, str, str]] = {}
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for r in db.execute(
            "SELECT id, idempotency_key, to_number, body, kind FROM messages WHERE idempotency_scope = ?"
            f" AND idempotency_key IN ({marks})",
            [scope, *chunk],
        ):
            out[r[1]] = (r[0], r[2], r[3], r[4])
    return out
