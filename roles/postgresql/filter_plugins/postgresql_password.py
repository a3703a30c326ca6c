"""`postgresql_password_matches`: whether a password is the one a PostgreSQL
role's stored verifier (`pg_authid.rolpassword`) was made from, checked on
the controller: trying to log in instead would leave a failed login in
PostgreSQL's log for every wrong guess."""

import base64
import hashlib
import hmac


def postgresql_password_matches(verifier, password, user):
    """True or False when the verifier tells; None when it cannot: no
    verifier, a format other than SCRAM-SHA-256 or md5, or a password that is
    not ASCII (PostgreSQL normalizes those with SASLprep first)."""
    if not verifier or not password.isascii():
        return None
    if verifier.startswith("md5"):
        expected = "md5" + hashlib.md5((password + user).encode(), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(verifier, expected)
    # SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (RFC 5802, 7677).
    try:
        scheme, iterations_salt, keys = verifier.split("$")
        iterations, salt = iterations_salt.split(":")
        stored_key = base64.b64decode(keys.split(":")[0], validate=True)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt, validate=True),
                                     int(iterations))
    except ValueError:
        return None
    if scheme != "SCRAM-SHA-256":
        return None
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored_key)


class FilterModule:
    def filters(self):
        return {"postgresql_password_matches": postgresql_password_matches}
