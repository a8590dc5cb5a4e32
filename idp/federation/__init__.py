"""Federation: upstream identity providers (OIDC, Google, Microsoft, GitHub, SAML 2.0) behind one
connector contract (connector.py), and the endpoints that send the browser upstream and back."""
