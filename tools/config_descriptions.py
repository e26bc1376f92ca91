# ruff: noqa: E501  (one description a line reads better than wrapped strings)
"""What each config key means: the one part of docs/admin/config-reference.md written by hand.

Keys, types and defaults are read from the code by `config_reference.py`; an entry here may
override `type` or `default` only where the code's fallback is not what a user sees (a default
computed from other keys, a number read as seconds that means hours).
"""

from __future__ import annotations

SECTIONS: dict[str, tuple[str, str]] = {
    "gateway": ("[gateway]", "Whose mail this is, and the key of the reply addresses."),
    "database": (
        "[database]",
        "Where tickets are stored. `$TICKETGATE_DATABASE_URL` overrides `database.url`.",
    ),
    "smtp": ("[smtp]", "The SMTP (or LMTP) listener `serve` runs, its limits and STARTTLS."),
    "outbound": ("[outbound]", "Where notifications go, and who they come from."),
    "staff": ("[staff]", "Who staff are, and who is told what."),
    "tickets": ("[tickets]", "Categories, defaults and the lifecycle's two settings."),
    "tags": ("[tags]", "The tag vocabulary of subjects, `+` sub-addresses and `#commands`."),
    "customers": ("[[customers]]", "The customer directory: one table per address or domain."),
    "limits": ("[limits]", "What one mail, or one sender, may bring."),
    "storage": ("[storage]", "Where screenshot and attachment bytes go."),
    "processing": ("[processing]", "How processing runs beside intake."),
    "forms": ("[[forms]]", "Web forms that mail the desk on a visitor's behalf: see [Web forms](forms.md)."),
    "rules": (
        "[[rules]]",
        "Routing rules, applied in order to a mail that opens a ticket: see [Routing rules](rules.md).",
    ),
    "imap": ("[[imap]]", "One table per mailbox to take mail from: see [IMAP intake](imap.md)."),
    "notifications": ("[notifications]", "Templates and delivery of notifications."),
    "metrics": ("[metrics]", "The Prometheus and health endpoints."),
    "logging": ("[logging]", ""),
    "security": ("[security]", "Verdicts of the deployment's own filters that ticketgate acts on."),
    "response_targets": ("[response_targets]", "Minutes to the first staff reply, by priority."),
    "views": ("[views]", "What customers and staff are sent about their queues."),
}

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "gateway.addresses": {
        "meaning": "addresses we take mail for, with their `+` sub-addresses; `*` as domain = any domain"
    },
    "gateway.ticket_prefix": {
        "meaning": "tickets are `PREFIX-ID` (1 to 16 letters and digits, starting with a letter)"
    },
    "gateway.secret": {
        "default": "required in a file (embedded defaults: a public development secret)",
        "meaning": "keys reply-address tokens (16+ characters)",
    },
    "gateway.node_name": {
        "default": "the host name",
        "meaning": "this `serve`'s name in the `nodes` heartbeat table (letters, digits, `. _ : @ -`); give each node on one host its own",
    },
    "database.url": {"meaning": "SQLAlchemy URL; `postgresql+psycopg://…` for PostgreSQL"},
    "database.reply_timeout": {
        "meaning": "PostgreSQL: how long `serve` (and `status`) waits for the server to answer one request — a query, a commit, a ping — before it closes that connection and tries again later on a new one; it also sets libpq's `tcp_user_timeout`. Commands have no such bound ([Delivery promises](../operations/delivery-promises.md))"
    },
    "smtp.listen": {"meaning": "`HOST:PORT` or `[IPv6]:PORT`"},
    "smtp.lmtp": {"meaning": "speak LMTP on that listener"},
    "smtp.max_message_size": {"meaning": "bytes; announced with `SIZE`, `552 5.3.4` over it"},
    "smtp.max_recipients": {"meaning": "more get `452 4.5.3`"},
    "smtp.max_connections": {"meaning": "more get `421 4.3.2`"},
    "smtp.command_timeout": {
        "meaning": "an idle client hears `421 4.4.2` and is disconnected after this long"
    },
    "smtp.data_timeout": {
        "meaning": "bounds the whole DATA phase: a client still sending when it passes hears `421 4.4.2` ([Faults and health](../operations/faults-and-health.md))"
    },
    "smtp.max_connections_per_ip": {
        "meaning": "connections open at once from one client IP address; more get `421 4.7.0` and are closed"
    },
    "smtp.tls_certificate": {
        "meaning": "PEM certificate chain: with `tls_key`, STARTTLS is offered (TLS 1.2 or later); read and matched when the config is loaded, so `check-config` names a missing, unreadable or mismatched file. Relative paths are relative to the working folder"
    },
    "smtp.tls_key": {"meaning": "the PEM private key of `tls_certificate`"},
    "smtp.require_tls": {
        "meaning": "`MAIL` before STARTTLS gets `530 5.7.0`; needs `tls_certificate` and `tls_key`"
    },
    "outbound.relay": {
        "meaning": "`dir:PATH` (one `.eml` file per mail), `smtp://HOST:PORT` (STARTTLS when offered), `smtps://HOST:PORT`; one connection (or one folder sync) per claimed batch of up to 16 notifications"
    },
    "outbound.from": {
        "default": "`ticketgate <first gateway address>` (`ticketgate <support@localhost>` when every address is `@*`)",
        "meaning": "the From of every notification; where every gateway address is `@*`, a ticket's notifications answer from its local part at the domain the ticket's customer wrote to",
    },
    "outbound.user": {"meaning": "relay login, with `outbound.password` (sent only over TLS)"},
    "outbound.password": {"meaning": "relay password, with `outbound.user`"},
    "outbound.ack_limit_per_hour": {"meaning": "`ticket_created` acknowledgements per sender per hour"},
    "staff.addresses": {
        "meaning": "staff; a staff address counts as staff only when the mail is authenticated (see [Commands by mail](../staff/commands-by-mail.md))"
    },
    "staff.triage": {"default": "absent: every staff address", "meaning": "new-ticket notices go here"},
    "staff.security_contact": {"meaning": "told of every new ticket in the Security category"},
    "staff.on_call": {
        "default": "absent: `staff.triage`",
        "meaning": "told at once of a new Urgent ticket in Billing & Payments or Security",
    },
    "staff.trusted_authserv_ids": {
        "meaning": "`Authentication-Results` servers whose verdict is trusted for staff authentication and [forged senders](../security/spam-and-floods.md)"
    },
    "tickets.categories": {
        "default": "the seven of SPEC §1",
        "meaning": "the category names (case-insensitive, each once)",
    },
    "tickets.default_category": {
        "default": "`Technical Issues & Bugs`",
        "meaning": "the category of a ticket nothing else names one for",
    },
    "tickets.staff_reply_status": {
        "meaning": "the status a public staff reply sets ([lifecycle](../staff/lifecycle.md))"
    },
    "tickets.default_priority": {"meaning": "the priority of a ticket nothing else names one for"},
    "tickets.auto_close_days": {
        "meaning": "days a Resolved ticket waits before the scheduler closes it (`0`: never)"
    },
    "tags": {
        "default": "the built-in vocabulary ([Tags](../customers/tags.md))",
        "meaning": '`word = "Priority or category"`, or `["Urgent", "Security"]`',
    },
    "customers[].match": {
        "meaning": "an address (`ana@acme.example`) or a domain (`acme.example`, its subdomains too)"
    },
    "customers[].tier": {
        "type": "one of `Free`, `Pro`, `Enterprise`",
        "meaning": "the tier of that customer's tickets (anyone not listed: Free)",
    },
    "customers[].account_manager": {
        "meaning": "told of each new Enterprise ticket and every later customer message on it"
    },
    "customers[].name": {"meaning": "the customer's name"},
    "limits.max_attachments": {"meaning": "files kept from one mail"},
    "limits.max_image_bytes": {"meaning": "screenshot size limit, in bytes"},
    "limits.max_image_pixels": {"meaning": "screenshot pixel limit, checked before decoding"},
    "limits.max_attachment_bytes": {"meaning": "attachment size limit, in bytes"},
    "limits.max_header_bytes": {
        "meaning": "a header section (the mail's, or any MIME part's) larger than this: the mail is quarantined"
    },
    "limits.max_mime_parts": {
        "meaning": "more MIME parts (every part of every multipart, and each embedded message): quarantined"
    },
    "limits.max_mime_depth": {
        "meaning": "MIME nesting deeper than this (the mail itself is level 1, a part of a multipart level 2): quarantined"
    },
    "limits.new_tickets_per_sender_per_hour": {
        "meaning": "more new-ticket mail from one sender in the hour is kept as `flood`; `0`: no limit"
    },
    "storage.blob_dir": {
        "meaning": "the folder store, content-addressed; with several nodes, storage they all mount; also where `storage migrate` reads or writes the folder side"
    },
    "storage.blobs": {
        "default": '`"database"` with PostgreSQL unless `storage.blob_dir` is set; `"dir"` with SQLite',
        "meaning": "where screenshot and attachment bytes go: the `blobs` table, or the folder `storage.blob_dir`",
    },
    "processing.workers": {
        "meaning": "processing threads in each worker process (in `serve` itself with `processes = 0`)"
    },
    "processing.max_attempts": {"meaning": "tries after a transient fault before the mail is quarantined"},
    "processing.retry_base_seconds": {
        "meaning": "back-off after a transient fault: doubles each try, with jitter, capped at an hour"
    },
    "processing.processes": {
        "default": "`1` on SQLite; on PostgreSQL one per core `serve` may run on, at most `4`",
        "meaning": "worker processes `serve` runs the processing in (each on its own core, outside the GIL of the process answering SMTP); a worker that dies is started again after 1 s (doubling up to a minute while workers keep dying young); `0`: the processing threads run inside `serve` itself. Measured: [Performance](../performance/index.md)",
    },
    "processing.nice": {
        "type": "integer, 0 to 19",
        "default": "`0` on SQLite; `5` on PostgreSQL",
        "meaning": "how much lower than `serve` the worker processes' CPU priority is (`nice`): when the cores are busy, intake's SMTP answers go first and processing catches up when intake leaves a core idle; `0`: the same priority. No effect with `processes = 0`. Measured: [Worker processes](configuration.md#worker-processes-on-postgresql)",
    },
    "processing.imap_reconcile_minutes": {
        "meaning": "how often the scheduler compares each `[[imap]]` mailbox's folders with the inbox, and how long a message may wait in the watched folder before it is reported; `0`: off. See [IMAP OAuth2 and reconciliation](imap-oauth2.md)"
    },
    "imap[].host": {"meaning": "the IMAP server"},
    "imap[].tls": {
        "type": "one of `ssl`, `starttls`, `none`",
        "meaning": "`ssl` (implicit TLS), `starttls`, or `none` (tests, loopback)",
    },
    "imap[].port": {"default": '`993` with `tls = "ssl"`, else `143`', "meaning": ""},
    "imap[].username": {"meaning": "the login name of the mailbox"},
    "imap[].password": {
        "meaning": "exactly one of `password`, `password_command`, `oauth2_token_command`, `oauth2` is required"
    },
    "imap[].password_command": {
        "meaning": "run through `/bin/sh` at every login; its first line is the password"
    },
    "imap[].oauth2_token_command": {
        "meaning": "run at every login; its first line is a current OAuth2 access token (XOAUTH2)"
    },
    "imap[].oauth2": {
        "type": "inline table",
        "meaning": "the built-in OAuth2 token fetch (XOAUTH2): `provider`, `client_id`, `client_secret` or `client_secret_command`, `refresh_token` or `refresh_token_command`, `tenant`, `token_url`, `scope`; each explained in [IMAP OAuth2 and reconciliation](imap-oauth2.md)",
    },
    "imap[].name": {
        "default": "the username",
        "meaning": "logs and `imap:<name>` sources use it; each mailbox its own",
    },
    "imap[].folder": {"meaning": "where new mail arrives; everything in it is taken in"},
    "imap[].processed_folder": {"meaning": "where mail goes once committed (created if missing)"},
    "imap[].quarantine_folder": {"meaning": "where mail that cannot be taken in goes (created if missing)"},
    "imap[].category": {
        "meaning": "the category of tickets this mailbox opens (subject tags and `+` sub-addresses still win)"
    },
    "imap[].priority": {
        "meaning": "the priority of tickets this mailbox opens (subject tags and `+` sub-addresses still win)"
    },
    "imap[].poll_interval": {"meaning": "seconds between checks when the server has no IDLE"},
    "notifications.templates_dir": {
        "meaning": "a folder of the deployment's own templates, tried before the built-in ones"
    },
    "notifications.retry_base_seconds": {
        "meaning": "back-off after a 4xx or a connection failure: doubles each try, with jitter"
    },
    "notifications.retry_max_seconds": {
        "meaning": "the back-off's cap (at most 3600: never more than an hour between two tries)"
    },
    "notifications.deadline_hours": {
        "type": "number of hours",
        "meaning": "a notification is tried until then; one not sent by then is `dead`",
    },
    "notifications.max_attempts": {
        "type": "integer",
        "default": "not read",
        "meaning": "accepted so older configs load; `serve` and `check-config` say it is no longer read (time decides, not a count of tries: `deadline_hours`)",
    },
    "notifications.max_attached_bytes": {
        "meaning": "originals of a mail's screenshots attached to one staff notification, in bytes; those over it are shown as thumbnails only (`0`: thumbnails only)"
    },
    "notifications.copy_participants": {
        "meaning": "`staff_reply` and `status_changed` also go to the ticket's participants, shown in `Cc` ([Copies, merges and quoting](../staff/copies-and-merges.md)); `false`: to the requester alone",
    },
    "notifications.poll_seconds": {
        "meaning": "how often the outbox sender looks for due notifications when nothing woke it (retries coming due, a dead node's claims, mail a command queued on SQLite); queued mail wakes it at once ([Acknowledgement latency](../performance/latency-and-cli.md))"
    },
    "control.socket": {
        "default": "absent: on, at `ticketgate-HASH.sock` in the working folder, HASH from the config file's path",
        "meaning": 'Unix socket on which `serve` answers the read-only commands (`tickets list`, `tickets show`, `status`, `inbox list`, …) for commands run with the same config and database (and, at the default path, in the same folder), so they skip SQLAlchemy\'s start-up; mode 0600; `""`: off (every command then starts on its own) ([CLI start-up](../performance/latency-and-cli.md#the-control-socket-as-built))',
    },
    "metrics.listen": {
        "default": "absent: off",
        "meaning": "`HOST:PORT` where `serve` answers `GET /metrics`, `/healthz`, `/readyz` ([Metrics and health](../operations/index.md#metrics-and-health)); no login: keep it on loopback or a management network",
    },
    "logging.format": {
        "type": "one of `text`, `json`",
        "meaning": "`json`: one JSON object per line ([Logs](../operations/index.md#logs))",
    },
    "security.spam_headers": {
        "default": '`["X-Spam-Flag: YES", "X-Spam: yes"]`',
        "meaning": '`"Header: value"` verdicts of our own spam filter that make a mail `spam` (mail\'s own header section only); `[]`: none',
    },
    "response_targets.urgent": {
        "meaning": 'minutes from a ticket\'s opening to its first staff reply, for Urgent; halved for Enterprise customers; shown as `first_response_due` and "Reply due"'
    },
    "response_targets.high": {"meaning": "the same, for High"},
    "response_targets.medium": {"meaning": "the same, for Medium"},
    "response_targets.low": {"meaning": "the same, for Low"},
    "views.my_tickets_word": {
        "meaning": "the sub-address that asks for one's own tickets: `support+tickets@…` (letters, digits, `-`, `_`; not `bounce…`)"
    },
    "views.my_tickets_per_hour": {
        "meaning": "`my_tickets` answers to one address per hour; more such mail is stored (outcome `my_tickets`) and not answered"
    },
    "views.timezone": {"meaning": "the IANA zone of `digest_at` and of the dates in `my_tickets`"},
    "views.digest_at": {
        "default": "absent: no digest",
        "meaning": '`"HH:MM"`: the daily digest to triage at that local time ([Escalations, the daily digest, on call](../staff/lifecycle.md#escalations-the-daily-digest-on-call))',
    },
    "forms[].sender": {
        "type": "address",
        "meaning": "the address the form mails from, matched against `From` (case-insensitively); not a gateway or staff address, and each entry its own",
    },
    "forms[].title_field": {"default": '`"Title"`', "meaning": "the label of the ticket's title"},
    "forms[].description_field": {
        "default": '`"Description"`',
        "meaning": "the label of the description (it may run over many lines)",
    },
    "forms[].priority_field": {"default": '`"Priority"`', "meaning": "the label of the priority"},
    "forms[].category_field": {"default": '`"Category"`', "meaning": "the label of the category"},
    "forms[].email_field": {
        "default": '`"Email"`',
        "meaning": "the label of the visitor's address, used when the mail has no usable `Reply-To`",
    },
    "forms[].name_field": {
        "default": '`"Name"`',
        "meaning": "the label of the visitor's name, used when `Reply-To` carries no display name",
    },
    "forms[].other_fields": {
        "meaning": "the form's other labels: each ends a Description, and their values are not read"
    },
    "forms[].require_authentication": {
        "meaning": "read the form only when its `From` domain is authenticated, the way staff mail is"
    },
    "rules[].name": {
        "meaning": "the rule's name; unique (case-insensitive); each rule that fires is a `rule` event naming it"
    },
    "rules[].from": {
        "meaning": "searched in the requester's address, in `Name <address>`, and in each `From` header as written",
        "type": "regular expression",
    },
    "rules[].to": {
        "meaning": "searched in each `To` address (bare and `Name <address>`), the envelope recipients (`RCPT TO`) and `Delivered-To`",
        "type": "regular expression",
    },
    "rules[].cc": {
        "meaning": "searched in each `Cc` address (bare and `Name <address>`); a mail without `Cc` does not match",
        "type": "regular expression",
    },
    "rules[].subject": {
        "meaning": "searched in the decoded subject as written, before prefixes, references and tags are taken out",
        "type": "regular expression",
    },
    "rules[].body": {
        "meaning": "searched in the mail's text (an HTML-only mail as its text), quotes and signature included",
        "type": "regular expression",
    },
    "rules[].header": {
        "meaning": "searched in each value of that header (decoded); a mail without the header does not match",
        "type": '`"Name: regular expression"`',
    },
    "rules[].priority": {
        "meaning": "the ticket's priority",
        "type": "`Low`, `Medium`, `High`, `Urgent` (any case)",
    },
    "rules[].category": {
        "meaning": "the ticket's category",
        "type": "one of `tickets.categories` (any case)",
    },
    "rules[].assign": {
        "meaning": "the ticket's assignee (an `assigned` event, actor `rule NAME`)",
        "type": "one of `staff.addresses`",
    },
    "rules[].acknowledge": {
        "meaning": "`false`: the requester gets no `ticket_created`; staff's `staff_new_ticket` says \"rule 'NAME' says acknowledge = false\""
    },
    "rules[].drop": {
        "meaning": "`true`: outcome `dropped` — stored, no ticket, no notification, listed by `inbox list`, releasable with `inbox release`; takes no other action"
    },
}
