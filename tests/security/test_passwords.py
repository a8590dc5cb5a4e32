"""Password hashing (bcrypt with pre-hash) and the password policy (NIST SP 800-63B 5.1.1.2)."""
import bcrypt
import pytest

from idp.security import passwords
from idp.security.passwords import hash_password, password_problems, verify_password


def test_hash_verifies_the_right_password_only(ctx):
    """A hash accepts its own password and refuses any other."""
    stored = hash_password("Correct-Horse-42")
    assert stored.startswith("$2b$")
    assert verify_password("Correct-Horse-42", stored)
    assert not verify_password("correct-horse-42", stored)


def test_same_password_hashes_differently_each_time(ctx):
    """Every hash carries its own salt."""
    assert hash_password("Correct-Horse-42") != hash_password("Correct-Horse-42")


def test_hash_uses_configured_cost(ctx):
    """BCRYPT_LOG_ROUNDS sets the bcrypt cost."""
    assert hash_password("Correct-Horse-42").split("$")[2] == "04"
    assert hash_password("Correct-Horse-42", rounds=5).split("$")[2] == "05"


def test_passwords_differing_after_byte_72_are_different(ctx):
    """bcrypt alone ignores bytes past 72; the pre-hash keeps every character significant."""
    base = "x" * 100
    first, second = base + "A", base + "B"
    stored = hash_password(first)
    assert verify_password(first, stored)
    assert not verify_password(second, stored)


def test_long_multibyte_password_round_trips(ctx):
    """A 256-character password of multi-byte characters hashes and verifies."""
    password = "пароль🔑" * 32
    assert verify_password(password, hash_password(password))


def test_nul_bytes_in_password_are_significant(ctx):
    """A NUL byte does not truncate the password (base64 pre-hash has none)."""
    stored = hash_password("abc\x00def-ghijk")
    assert not verify_password("abc\x00xyz-ghijk", stored)


def test_verify_without_hash_fails_and_burns_a_bcrypt_round(ctx, monkeypatch):
    """With no stored hash the check still runs bcrypt once, so timing does not reveal it."""
    calls = []
    real = bcrypt.checkpw
    monkeypatch.setattr(passwords.bcrypt, "checkpw", lambda *a: calls.append(1) or real(*a))
    assert verify_password("anything-at-all", None) is False
    assert len(calls) == 1


def test_unknown_account_costs_one_bcrypt_at_the_configured_cost_and_no_more(ctx, monkeypatch):
    """The timing equaliser checks at BCRYPT_LOG_ROUNDS and never hashes, not even on a process's first miss."""
    passwords._dummy_hash.cache_clear()
    checked, hashed = [], []
    real = bcrypt.checkpw
    monkeypatch.setattr(passwords.bcrypt, "checkpw", lambda pw, stored: checked.append(stored) or real(pw, stored))
    monkeypatch.setattr(passwords.bcrypt, "hashpw", lambda *a: hashed.append(1))
    assert verify_password("anything-at-all", None) is False
    assert verify_password("authy2-timing-equaliser", "") is False
    assert hashed == [] and len(checked) == 2
    assert all(stored.split(b"$")[2] == b"04" and len(stored) == 60 for stored in checked)


def test_verify_with_garbage_hash_is_false_not_an_error(ctx):
    """A corrupt stored hash fails closed."""
    assert verify_password("Correct-Horse-42", "not-a-bcrypt-hash") is False


@pytest.mark.parametrize("password, fragment", [
    ("short1!", "at least 8"),
    ("a" * 257, "at most 256"),
    ("password123", "too common"),
    ("Password", "too common"),
])
def test_policy_refuses_weak_passwords(password, fragment):
    """Too short, too long or commonly used passwords are refused with a reason."""
    assert any(fragment in problem for problem in password_problems(password))


def test_policy_refuses_own_email_and_name():
    """The account's email, its local part, or its name is not a password."""
    assert password_problems("alice@example.com", email="alice@example.com")
    assert password_problems("ALICE-EXAMPLE", email="alice-example@x.org")
    assert password_problems("Alice Liddell", name="alice liddell")


def test_policy_accepts_long_passphrase_without_composition_rules():
    """No composition rules: a long lower-case passphrase is fine."""
    assert password_problems("correct horse battery staple") == []
    assert password_problems("x" * 256) == []
