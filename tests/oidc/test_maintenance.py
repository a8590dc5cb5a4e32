"""The purge job for expired OIDC rows."""
from datetime import datetime, timedelta, timezone

import time_machine


def test_purge_deletes_expired_codes_tokens_and_requests(flow, user, app):
    """Expired codes, access-token records and pending requests are deleted by the job."""
    from idp.jobs import run_job
    from idp.models import AccessToken, AuthorizationCode, AuthorizationRequest

    flow.authorize()  # a pending request (nobody signed in)
    flow.sign_in(user)
    flow.tokens()
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=2)), app.app_context():
        assert "deleted 3" in run_job("purge_expired_grants")[0]
        assert AuthorizationCode.query.count() == AccessToken.query.count() == AuthorizationRequest.query.count() == 0
