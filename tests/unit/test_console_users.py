"""Console users: scrypt password hashes, and `victoria-sip users add|list|remove` against a real SQLite file."""

import sqlite3

import pytest
from click.testing import CliRunner

from victoria_sip.cli import main
from victoria_sip.domain import ConsoleRole, ConsoleUser
from victoria_sip.domain.console_user import hash_password, password_problem, verify_password

PASSWORD = "correct horse battery"


def test_a_password_verifies_against_its_own_hash_only():
    stored = hash_password(PASSWORD)
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + "!", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt_and_never_holds_the_password():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second and PASSWORD not in first
    assert first.startswith("scrypt$32768$8$1$")


@pytest.mark.parametrize("stored", ["", "plain-text", "md5$x$y$z$a$b", "scrypt$32768$8$1$!!!$???",
                                    "scrypt$x$8$1$AAAA$AAAA"])
def test_a_malformed_hash_matches_nothing(stored):
    assert not verify_password(PASSWORD, stored)


def test_short_or_padded_passwords_are_refused_with_the_reason():
    assert "10 characters" in password_problem("short")
    assert "white space" in password_problem(" correct horse battery")
    assert password_problem(PASSWORD) is None


def test_a_user_name_is_checked():
    with pytest.raises(ValueError, match="letters, digits"):
        ConsoleUser.new("bad name", ConsoleRole.VIEWER, "")


def users(db, *args, stdin=""):
    return CliRunner().invoke(main, ["users", *args, "--db", db], input=stdin)


def test_users_are_added_listed_and_removed_with_the_password_from_stdin(tmp_path):
    db = f"sqlite:///{tmp_path / 'victoria.db'}"
    assert users(db, "add", "ops", stdin=PASSWORD + "\n").exit_code == 0
    assert users(db, "add", "boss", "--role", "admin", stdin="another good password\n").exit_code == 0
    listed = users(db, "list").output.splitlines()
    assert [line.split()[:2] for line in listed] == [["boss", "admin"], ["ops", "viewer"]]

    [(name, stored)] = sqlite3.connect(tmp_path / "victoria.db").execute(
        "select name, password_hash from console_users where name = 'ops'").fetchall()
    assert verify_password(PASSWORD, stored) and PASSWORD not in stored

    again = users(db, "add", "ops", stdin=PASSWORD + "\n")
    assert again.exit_code == 1 and "already exists" in again.output
    assert users(db, "remove", "ops").exit_code == 0
    missing = users(db, "remove", "ops")
    assert missing.exit_code == 1 and "no user 'ops'" in missing.output
    assert [line.split()[0] for line in users(db, "list").output.splitlines()] == ["boss"]


def test_a_weak_password_or_one_on_the_command_line_is_refused(tmp_path):
    db = f"sqlite:///{tmp_path / 'victoria.db'}"
    weak = users(db, "add", "ops", stdin="short\n")
    assert weak.exit_code == 2 and "10 characters" in weak.output
    on_argv = users(db, "add", "ops", PASSWORD)
    assert on_argv.exit_code == 2  # no such argument: a password on argv would show in `ps` and shell history
    assert users(db, "list").output == ""
