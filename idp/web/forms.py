"""Flask-WTF forms of the hosted pages (each carries a CSRF token)."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional, Regexp

from idp.security.passwords import MAX_LENGTH as PASSWORD_MAX

EMAIL_REQUIRED = "Enter your email address."
PASSWORD_REQUIRED = "Enter your password."


def _email_field(label: str = "Email address") -> EmailField:
    return EmailField(label, validators=[DataRequired(EMAIL_REQUIRED), Length(max=254),
                                         Email("Enter a valid email address, like name@example.com.")])


class LoginForm(FlaskForm):
    email = EmailField("Email address", validators=[DataRequired(EMAIL_REQUIRED), Length(max=254)])
    # Required unless the address's domain signs in at an upstream (home-realm discovery, web.sign_in).
    password = PasswordField("Password", validators=[Length(max=PASSWORD_MAX)])
    # Checked where used (find_pending, safe_next): a bad value is ignored, never a hidden form error.
    request = HiddenField()
    next = HiddenField()
    submit = SubmitField("Sign in")


class RegisterForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired("Enter your name."), Length(max=200)])
    email = _email_field()
    password = PasswordField("Password", validators=[DataRequired("Choose a password."), Length(max=PASSWORD_MAX)])
    confirm = PasswordField("Confirm password", validators=[DataRequired("Type the password again."),
                                                           EqualTo("password", "The passwords do not match.")])
    submit = SubmitField("Create account")


class ForgotPasswordForm(FlaskForm):
    email = _email_field()
    submit = SubmitField("Send reset link")


class NewPasswordForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired("Choose a password."), Length(max=PASSWORD_MAX)])
    confirm = PasswordField("Confirm new password", validators=[DataRequired("Type the password again."),
                                                               EqualTo("password", "The passwords do not match.")])
    submit = SubmitField("Set new password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired(PASSWORD_REQUIRED),
                                                                      Length(max=PASSWORD_MAX)])
    password = PasswordField("New password", validators=[DataRequired("Choose a password."), Length(max=PASSWORD_MAX)])
    confirm = PasswordField("Confirm new password", validators=[DataRequired("Type the password again."),
                                                               EqualTo("password", "The passwords do not match.")])
    submit = SubmitField("Change password")


class ProfileForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired("Enter your name."), Length(max=200)])
    given_name = StringField("Given name", validators=[Optional(), Length(max=100)])
    family_name = StringField("Family name", validators=[Optional(), Length(max=100)])
    locale = StringField("Language", validators=[Optional(), Length(max=35),
                                                 Regexp(r"^[A-Za-z]{2,8}([-_][A-Za-z0-9]{1,8})*$",
                                                        message="Use a language tag such as en or en-GB.")])
    zoneinfo = StringField("Time zone", validators=[Optional(), Length(max=64),
                                                    Regexp(r"^[A-Za-z0-9_+\-/]+$",
                                                           message="Use a time zone such as Europe/Paris.")])
    submit = SubmitField("Save profile")


class ConsentForm(FlaskForm):
    allow = SubmitField("Allow")
    deny = SubmitField("Deny")


class ActionForm(FlaskForm):
    """A button-only form (sign out, revoke, resend): the CSRF token is its whole content."""

    submit = SubmitField("Confirm")
