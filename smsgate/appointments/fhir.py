"""Appointments from FHIR R4 JSON: one `Appointment`, a `Bundle` of entries, or a JSON array of them.

The patient is the participant whose `actor.reference` leads to a Patient, looked up inside the file:
a contained resource (`#p1`), an entry's `fullUrl` (`urn:uuid:...`, an absolute URL) or `Patient/123`.
Their number is a `telecom` with system `sms`, else a `phone` whose use is `mobile`, else any other
phone (never one marked `old`; lower `rank` first). Practitioner and Location participants give the
provider's and the place's names (the resource's name, else the reference's `display`).

Statuses: proposed, pending and booked are booked; arrived, checked-in and fulfilled are completed;
cancelled and entered-in-error are cancelled; noshow is no-show. A waitlist entry is not an appointment
yet and is refused. FHIR times carry an offset but no zone, so an appointment is shown in the zone a
`timezone` extension names (on the Appointment or its Location), else in the clinic's.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsgate.queue.appointments import AppointmentInput

from .sources import ItemError, ParsedFile, SourceError

__all__ = ["STATUS_MAP", "FhirOptions", "parse_fhir"]

STATUS_MAP = {
    "proposed": "booked", "pending": "booked", "booked": "booked",
    "arrived": "completed", "checked-in": "completed", "fulfilled": "completed",
    "cancelled": "cancelled", "entered-in-error": "cancelled",
    "noshow": "no-show",
}
_TIMEZONE_EXTENSION = "timezone"


@dataclass(frozen=True)
class FhirOptions:
    clinic_zone: str


Resource = dict[str, Any]


class _Index:
    """The resources of one file, found by the ways a reference can point at them."""

    def __init__(self, entries: list[tuple[str | None, Resource]]) -> None:
        self.by_url: dict[str, Resource] = {}
        self.by_type_id: dict[str, Resource] = {}
        for full_url, res in entries:
            if full_url:
                self.by_url[full_url] = res
            rtype, rid = res.get("resourceType"), res.get("id")
            if isinstance(rtype, str) and isinstance(rid, str):
                self.by_type_id.setdefault(f"{rtype}/{rid}", res)

    def resolve(self, reference: str, container: Resource) -> Resource | None:
        if reference.startswith("#"):
            for res in _list(container.get("contained")):
                if isinstance(res, dict) and res.get("id") == reference[1:]:
                    return res
            return None
        if reference in self.by_url:
            return self.by_url[reference]
        parts = reference.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            return self.by_type_id.get(f"{parts[-2]}/{parts[-1]}")
        return None


def _list(value: Any) -> list[Any]:
    """A JSON array, or nothing: a field that should be one but is not is read as absent."""
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _human_name(names: Any, *, prefix: bool = False) -> tuple[str | None, str | None]:
    """(full name, first name) of the best HumanName: usual or official first, never an old one."""
    if not isinstance(names, list):
        return None, None
    usable = [n for n in names if isinstance(n, dict) and n.get("use") != "old"]
    usable.sort(key=lambda n: {"usual": 0, "official": 1}.get(str(n.get("use")), 2))
    for n in usable:
        given = [g.strip() for g in _list(n.get("given")) if isinstance(g, str) and g.strip()]
        family = _text(n.get("family"))
        parts = [p.strip() for p in _list(n.get("prefix")) if prefix and isinstance(p, str) and p.strip()]
        full = _text(n.get("text")) or " ".join([*parts, *given, *([family] if family else [])]) or None
        if full:
            return full, (given[0] if given else None)
    return None, None


def _phone(patient: Resource) -> str | None:
    best: tuple[tuple[int, int, int], str] | None = None
    for i, cp in enumerate(_list(patient.get("telecom"))):
        if not isinstance(cp, dict) or cp.get("use") == "old" or not _text(cp.get("value")):
            continue
        system = cp.get("system")
        if system == "sms":
            order = 0
        elif system == "phone":
            order = 1 if cp.get("use") == "mobile" else 2
        else:
            continue
        rank = cp["rank"] if isinstance(cp.get("rank"), int) else 1_000_000
        key = (order, int(rank), i)
        if best is None or key < best[0]:
            best = (key, str(cp["value"]).strip())
    return best[1] if best is not None else None


def _instant(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise SourceError(f"it has no {what}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise SourceError(f"{what} {value!r} is not a FHIR instant such as 2026-03-10T14:30:00-05:00") from None
    if parsed.tzinfo is None:
        raise SourceError(f"{what} {value!r} has no time-zone offset (FHIR instants need one, e.g. -05:00 or Z)")
    return parsed


def _zone_extension(resource: Resource | None) -> str | None:
    for ext in _list((resource or {}).get("extension")):
        if isinstance(ext, dict) and str(ext.get("url", "")).rstrip("/").endswith(_TIMEZONE_EXTENSION):
            code = ext.get("valueCode")
            if isinstance(code, str):
                try:
                    ZoneInfo(code)
                except (ZoneInfoNotFoundError, ValueError, OSError):
                    raise SourceError(f"its timezone extension {code!r} is not a time-zone name") from None
                return code
    return None


def _coded(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    if _text(concept.get("text")):
        return _text(concept.get("text"))
    for coding in _list(concept.get("coding")):
        if isinstance(coding, dict):
            found = _text(coding.get("display")) or _text(coding.get("code"))
            if found:
                return found
    return None


def _reference_type(ref: str | None) -> str | None:
    """"Patient" for "Patient/7" or "https://ehr.example/fhir/Patient/7/_history/2"."""
    if not ref or ref.startswith("#"):
        return None
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else None


def _appointment(res: Resource, index: _Index, options: FhirOptions) -> AppointmentInput:
    ext_id = _text(res.get("id"))
    if ext_id is None:
        for ident in _list(res.get("identifier")):
            if isinstance(ident, dict) and _text(ident.get("value")):
                ext_id = _text(ident.get("value"))
                break
    if ext_id is None:
        raise SourceError("it has neither an id nor an identifier, and smsgate keys appointments by one")
    raw_status = res.get("status")
    if raw_status == "waitlist":
        raise SourceError("its status is waitlist: it is not booked yet, so it is not imported")
    if not isinstance(raw_status, str) or raw_status not in STATUS_MAP:
        raise SourceError(f"status {raw_status!r} is not an R4 Appointment status ({', '.join(STATUS_MAP)})")
    start = _instant(res.get("start"), "start")
    patient: Resource | None = None
    patient_ref: str | None = None
    provider: str | None = None
    location: str | None = None
    location_res: Resource | None = None
    for part in _list(res.get("participant")):
        actor = part.get("actor") if isinstance(part, dict) else None
        if not isinstance(actor, dict):
            continue
        ref = _text(actor.get("reference"))
        found = index.resolve(ref, res) if ref else None
        rtype = (found or {}).get("resourceType") or _reference_type(ref) or actor.get("type")
        if rtype == "Patient" and patient is None:
            patient_ref = ref
            if found is None:
                raise SourceError(f"its patient {ref or actor.get('display') or '(no reference)'} is not in the "
                                  "file; include the Patient resource (contained or as an entry) so its phone "
                                  "number is known")
            patient = found
        elif rtype in ("Practitioner", "PractitionerRole") and provider is None:
            provider = (_human_name(found.get("name"), prefix=True)[0] if found and rtype == "Practitioner"
                        else None) or _text(actor.get("display"))
        elif rtype == "Location" and location is None:
            location_res = found
            location = (_text(found.get("name")) if found else None) or _text(actor.get("display"))
    if patient is None:
        raise SourceError("it has no Patient participant (participant[].actor.reference to a Patient)")
    number = _phone(patient)
    if number is None:
        raise SourceError(f"the patient {patient_ref} has no phone or sms number in telecom")
    name, first = _human_name(patient.get("name"))
    end = res.get("end")
    minutes: int | None = None
    if end is not None:
        delta = _instant(end, "end") - start
        if delta.total_seconds() < 0:
            raise SourceError(f"it ends ({end}) before it starts ({res.get('start')})")
        minutes = int(delta.total_seconds() // 60)
    elif isinstance(res.get("minutesDuration"), int):
        minutes = int(res["minutesDuration"])
    meta: Resource = res["meta"] if isinstance(res.get("meta"), dict) else {}
    version = str(meta.get("versionId", "")).strip()
    service = res.get("serviceType")
    kind = _coded(res.get("appointmentType")) or (_coded(service[0]) if isinstance(service, list) and service
                                                  else None)
    notes = "\n".join(t for t in (_text(res.get("description")), _text(res.get("comment"))) if t) or None
    return AppointmentInput(
        external_id=ext_id,
        number=number,
        start=start,
        timezone=_zone_extension(res) or _zone_extension(location_res) or options.clinic_zone,
        status=STATUS_MAP[raw_status],
        duration_minutes=minutes,
        patient_name=name,
        first_name=first,
        provider=provider,
        location=location,
        appointment_type=kind,
        notes=notes,
        revision=int(version) if version.isdigit() else None,
        modified_at=_instant(meta["lastUpdated"], "meta.lastUpdated") if meta.get("lastUpdated") else None,
    )


def _outcome_text(doc: Resource) -> str:
    texts = [str(i.get("diagnostics") or _coded(i.get("details")) or i.get("code"))
             for i in _list(doc.get("issue")) if isinstance(i, dict)]
    return "; ".join(texts) or "no details"


def parse_fhir(text: str, options: FhirOptions) -> ParsedFile:
    """Every Appointment in the JSON as an `AppointmentInput`, or an error naming it."""
    out = ParsedFile("fhir")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        out.errors.append(ItemError("file", f"this is not JSON ({exc.msg} at line {exc.lineno}, column "
                                            f"{exc.colno}); export the appointments as FHIR JSON"))
        return out
    except RecursionError:
        out.errors.append(ItemError("file", "its JSON is nested too deeply to be FHIR; export the appointments "
                                            "again"))
        return out
    entries: list[tuple[str, str | None, Any]] = []  # (label, fullUrl, resource)
    if isinstance(doc, list):
        entries = [(f"item {i}", None, r) for i, r in enumerate(doc)]
    elif isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        for i, entry in enumerate(_list(doc.get("entry"))):
            if not isinstance(entry, dict):
                out.errors.append(ItemError(f"entry {i}", "it is not a JSON object"))
                continue
            entries.append((f"entry {i}", _text(entry.get("fullUrl")), entry.get("resource")))
    elif isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome":
        out.errors.append(ItemError("file", f"the FHIR server answered with an error instead of appointments: "
                                            f"{_outcome_text(doc)}"))
        return out
    elif isinstance(doc, dict) and doc.get("resourceType") == "Appointment":
        entries = [("resource", None, doc)]
    else:
        kind = doc.get("resourceType") if isinstance(doc, dict) else type(doc).__name__
        out.errors.append(ItemError("file", f"this is not a FHIR Appointment or Bundle (resourceType {kind!r})"))
        return out
    resources = [(url, r) for _, url, r in entries if isinstance(r, dict)]
    index = _Index(resources)
    seen: Counter[str] = Counter()
    for label, _, res in entries:
        if not isinstance(res, dict):
            if res is not None:
                out.errors.append(ItemError(label, "its resource is not a JSON object"))
            continue
        rtype = str(res.get("resourceType"))
        seen[rtype] += 1
        if rtype != "Appointment":
            continue
        named = f"{label} (Appointment/{res.get('id')})" if res.get("id") else label
        try:
            out.items.append(replace(_appointment(res, index, options), origin=label))
        except SourceError as exc:
            out.errors.append(ItemError(named, str(exc)))
    if not seen["Appointment"] and not out.errors:
        found = ", ".join(f"{n} {t}" for t, n in sorted(seen.items())) or "nothing"
        out.errors.append(ItemError("file", f"there is no Appointment resource in it (found {found}); export "
                                            "the Appointment resources, with their Patients"))
    return out
