"""The optional email sink: the notification's `text` and payload through SES (boto3 `sesv2`)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.notify.rules import Verdict

# SES refusals that the same request would get again (bad address, unverified sender, sending paused).
REFUSED_ERRORS = frozenset(
    {
        "BadRequestException",
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "AccountSuspendedException",
        "SendingPausedException",
    }
)


class EmailSink:
    def __init__(self, ses: Any, *, sender: str, recipients: list[str]) -> None:
        self._ses = ses
        self._sender = sender
        self._recipients = recipients

    def deliver(self, payload: dict[str, Any]) -> tuple[Verdict, str]:
        from botocore.exceptions import BotoCoreError, ClientError

        subject = f"[studio-uploads {payload.get('stage')}] {payload.get('event')} {payload.get('jobId')}"
        text = f"{payload.get('text')}\n\n{json.dumps(payload, indent=2)}\n"
        try:
            self._ses.send_email(
                FromEmailAddress=self._sender,
                Destination={"ToAddresses": self._recipients},
                Content={"Simple": {"Subject": {"Data": subject[:200]}, "Body": {"Text": {"Data": text}}}},
            )
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            return (Verdict.REFUSED if code in REFUSED_ERRORS else Verdict.RETRY), f"SES {code}"
        except BotoCoreError as error:
            return Verdict.RETRY, f"SES unreachable: {type(error).__name__}"
        return Verdict.DELIVERED, "SES accepted"
