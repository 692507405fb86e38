"""The forms of invitations: the researcher's new link, and a newcomer's sign-up through
one. They check input only; annotate.enrollment decides (and words) the rest."""

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User

from annotate import errors
from annotate.enrollment import MAX_DAYS, MAX_USES, email_domain_clean, invitation_email_check
from annotate.errors import InvalidInput
from annotate.models import Invitation, Study


class InvitationForm(forms.Form):
    studies = forms.ModelMultipleChoiceField(
        queryset=Study.objects.exclude(status=Study.Status.CLOSED).order_by("name"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": errors.INVITATION_NO_STUDY},
        help_text="Whoever joins through the link is enrolled in each of these.",
    )
    expires_in_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_DAYS,
        required=False,
        initial=14,
        label="Expires in (days)",
        help_text="Empty: the link never expires.",
        error_messages={
            key: errors.INVITATION_EXPIRY_RANGE.format(days="%(value)s") for key in ("min_value", "max_value")
        },
    )
    max_uses = forms.IntegerField(
        min_value=1,
        max_value=MAX_USES,
        required=False,
        label="Maximum uses",
        help_text="How many people may join through it; empty: no limit.",
        error_messages={
            key: errors.INVITATION_MAX_USES_RANGE.format(uses="%(value)s")
            for key in ("min_value", "max_value")
        },
    )
    email_domain = forms.CharField(
        max_length=253,
        required=False,
        label="E-mail domain",
        help_text="For example example.org: new accounts must give an e-mail address there. Empty: any.",
    )
    note = forms.CharField(
        max_length=Invitation._meta.get_field("note").max_length,
        required=False,
        help_text="Your label for the link; the people invited do not see it.",
    )

    def clean_email_domain(self) -> str:
        try:
            return email_domain_clean(self.cleaned_data["email_domain"])
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None


class SignupForm(UserCreationForm):
    """Username, e-mail and the password twice (Django's password validators). The e-mail
    is required, at the invitation's domain, when the invitation names one."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def __init__(self, *args, invitation: Invitation, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        email = self.fields["email"]
        if invitation.email_domain:
            email.required = True
            email.help_text = f"An address at {invitation.email_domain}."
            email.error_messages["required"] = errors.EMAIL_REQUIRED.format(domain=invitation.email_domain)
        else:
            email.help_text = "Optional."

    def clean_email(self) -> str:
        email = self.cleaned_data.get("email", "")
        try:
            invitation_email_check(self.invitation, email)
        except InvalidInput as exc:
            raise forms.ValidationError(exc.message) from None
        return email
