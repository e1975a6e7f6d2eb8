"""smsgate.appointments: appointments from the clinic's system and the reminders planned for them.

- `plans`: the `[appointments]` settings and `[[reminders]]` plans (read by `smsgate.config`), validated
  when the file is loaded; `wording`: reminder templates and the date/weekday words of each language.
  Both import only the standard library, because `smsgate.config` imports them.
- `ical`, `fhir`: readers of `.ics` files and FHIR R4 JSON into `AppointmentInput`s, each item's
  problem reported on its own.
- `planner`: the pure reminder planner (appointment, plan, quiet hours, now -> what to create, cancel,
  re-time).
- `service`: `AppointmentService`, the one entry point every source calls: upsert, then re-plan, in
  one commit; imports of whole files with a report.

May import: `queue`, `config`, `numbers`, `keywords` (quiet hours, answer maps). Never the top layer
(cli, web, modemd, gateway, webhooks, status) or the simulator. This `__init__` imports nothing, so that
`smsgate.config` can import `plans` without pulling in the store.
"""
