"""Gatehouse as an OpenID Provider, from Python's Authlib (a client library nobody here wrote).

Driven by tests/oauth-authlib.test.mjs, which starts the real Worker and plays the browser:
this script prints the authorization URL as a JSON line, reads the URL the browser was sent
back to from stdin, then redeems the code (PKCE, client_secret_basic), verifies the ID token
against the JWKS (RS256, iss, aud, nonce, exp), calls userinfo and refreshes, and prints what
it got as a JSON line. Any failure raises, which the test sees as a non-zero exit.
"""

import json
import os
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt

ISSUER = os.environ["ISSUER"]
REDIRECT = os.environ["REDIRECT_URI"]

meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
assert meta["issuer"] == ISSUER, meta["issuer"]

session = OAuth2Session(
    os.environ["CLIENT_ID"],
    os.environ["CLIENT_SECRET"],
    scope="openid email profile offline_access",
    redirect_uri=REDIRECT,
    code_challenge_method="S256",
    token_endpoint_auth_method="client_secret_basic",
)
verifier = generate_token(64)
nonce = generate_token(20)
url, state = session.create_authorization_url(
    meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
)
print(json.dumps({"authorization_url": url}), flush=True)

callback = sys.stdin.readline().strip()
token = session.fetch_token(
    meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
)

jwks = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
claims = jwt.decode(
    token["id_token"],
    jwks,
    claims_options={
        "iss": {"essential": True, "value": ISSUER},
        "aud": {"essential": True, "value": os.environ["CLIENT_ID"]},
        "nonce": {"essential": True, "value": nonce},
        "exp": {"essential": True},
    },
)
claims.validate()
header = json.loads(
    __import__("base64").urlsafe_b64decode(token["id_token"].split(".")[0] + "==")
)

userinfo = session.get(meta["userinfo_endpoint"], timeout=10).json()
refreshed = session.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])

print(
    json.dumps(
        {
            "alg": header["alg"],
            "sub": claims["sub"],
            "email": claims.get("email"),
            "userinfo": userinfo,
            "rotated": refreshed["refresh_token"] != token["refresh_token"],
            "refreshed_access": bool(refreshed.get("access_token")),
        }
    ),
    flush=True,
)
