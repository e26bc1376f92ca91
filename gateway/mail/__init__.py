"""Reading a mail: pure functions of bytes and headers to values (parse, charsets, HTML to text,
subject, requester, reply trimming, bounces, authentication results). No database, no sending."""
