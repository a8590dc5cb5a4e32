"""Grant types: authorization_code (+PKCE, +OpenID), refresh_token (rotating), client_credentials."""
