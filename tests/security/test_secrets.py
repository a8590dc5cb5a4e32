"""Random tokens, stored token hashes, constant-time compares, client secrets, encryption at rest."""
import base64

from idp.security.secrets import (Encryptor, check_client_secret, hash_client_secret, hash_token, new_token,
                                  tokens_equal)

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def test_new_tokens_are_url_safe_and_unique():
    """Tokens carry 32 random bytes, URL-safe, never repeating."""
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(t) >= 43 and set(t) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
               for t in tokens)


def test_hash_token_is_stable_sha256_hex_and_not_the_token():
    """The stored form is a 64-hex SHA-256 digest, the same for the same token."""
    token = new_token()
    assert hash_token(token) == hash_token(token)
    assert len(hash_token(token)) == 64 and token not in hash_token(token)
    assert hash_token(token) != hash_token(token + "x")


def test_tokens_equal_compares_str_and_bytes():
    """Constant-time equality works on str and bytes alike."""
    assert tokens_equal("abc", b"abc")
    assert not tokens_equal("abc", "abd")
    assert not tokens_equal("abc", "abcd")


def test_client_secret_hash_is_salted_and_checks():
    """The same secret hashes differently each time and still checks."""
    first, second = hash_client_secret("s3cret"), hash_client_secret("s3cret")
    assert first != second and first.startswith("sha256$")
    assert check_client_secret(first, "s3cret") and check_client_secret(second, "s3cret")
    assert not check_client_secret(first, "s3cret ")


def test_client_secret_check_fails_closed():
    """Missing, malformed or foreign-scheme stored hashes never match."""
    assert not check_client_secret(None, "x")
    assert not check_client_secret(hash_client_secret("x"), None)
    assert not check_client_secret("garbage", "x")
    assert not check_client_secret("md5$salt$digest", "x")


def test_encryptor_round_trips_and_rejects_tampering():
    """Ciphertext decrypts to the plaintext; a changed byte or another key gives None."""
    box = Encryptor(KEY)
    sealed = box.encrypt("upstream-client-secret")
    assert "upstream-client-secret" not in sealed
    assert box.decrypt(sealed) == "upstream-client-secret"
    tampered = sealed[:-5] + ("A" if sealed[-5] != "A" else "B") + sealed[-4:]
    assert box.decrypt(tampered) is None
    assert Encryptor(base64.urlsafe_b64encode(b"z" * 32).decode()).decrypt(sealed) is None
    assert box.decrypt("not-a-token") is None
