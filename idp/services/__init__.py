"""Domain operations shared by the API, the hosted pages and the OIDC endpoints.

Services add and flush; the request commits once (see idp.transactions) or rolls back.
"""
