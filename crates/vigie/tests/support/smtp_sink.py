"""A real SMTP server for the tests: Python's stdlib `smtpd` (3.11), listening on
127.0.0.1:<port>, writing each message it accepts to <dir> as NNNN.eml (the raw bytes) and
NNNN.json (envelope, To, Subject, and the text and HTML parts decoded by the stdlib `email`
package). Prints "ready" once listening.

    python3 -W ignore smtp_sink.py <port> <dir>
"""

import asyncore
import email
import itertools
import json
import os
import smtpd
import sys
from email import policy


class Sink(smtpd.SMTPServer):
    counter = itertools.count(1)

    def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):
        number = next(self.counter)
        raw = data if isinstance(data, bytes) else data.encode()
        message = email.message_from_bytes(raw, policy=policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        record = {
            "mail_from": mailfrom,
            "rcpt_tos": rcpttos,
            "from": str(message["From"]),
            "to": str(message["To"]),
            "subject": str(message["Subject"]),
            "content_type": message.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        base = os.path.join(OUT, "%04d" % number)
        with open(base + ".eml", "wb") as f:
            f.write(raw)
        with open(base + ".tmp", "w", encoding="utf-8") as f:
            json.dump(record, f)
        # Written whole, then renamed: a reader never sees half a file.
        os.rename(base + ".tmp", base + ".json")
        return None


PORT = int(sys.argv[1])
OUT = sys.argv[2]
Sink(("127.0.0.1", PORT), None, decode_data=False)
print("ready", flush=True)
asyncore.loop()
