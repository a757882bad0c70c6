from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm


class RegistrationForm(UserCreationForm):
    email = forms.EmailField()
    first_name = forms.CharField(max_length=100)
    last_name = forms.CharField(max_length=100, required=False)
    country = forms.CharField(max_length=2, required=False, help_text="Two letters, e.g. US or IT.")
    email_offers = forms.BooleanField(
        required=False,
        label="E-mail me offers and reminders",
        help_text="You can unsubscribe from any e-mail.",
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email", "first_name", "last_name")

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address already exists.")
        return email

    def clean_country(self):
        return self.cleaned_data["country"].upper()
