"""The trainer's option declarations (``training.options``) as form fields and API fields.

A field built here takes exactly the values its declaration takes and refuses the others
with the trainer's own message; the form and serializer classes built from several also
check them together (β only for DPO and SimPO) with the trainer's function. So the launch
forms, the API and ``python -m training`` accept and refuse the same values
(``tests/jobs/test_training_options.py``). Left empty, an option takes its declared
default, as on the command line.
"""

from collections.abc import Callable

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import serializers

from training.options import Option, OptionError

Validate = Callable[[dict], dict]


def _validator(option: Option) -> Callable:
    def check(value) -> None:
        try:
            option.check(value)
        except OptionError as exc:
            raise ValidationError(str(exc)) from exc

    return check


def _form_help(option: Option) -> str:
    """The help as a sentence, with the default where the empty field does not show it; none
    for a choice (its menu shows the values)."""
    if option.choices:
        return ""
    text = (option.help[0].upper() if option.help[0].isascii() else option.help[0]) + option.help[1:] + "."
    return text if option.default is not None else f"{text} Default: {option.default_text}."


def _api_help(option: Option) -> str:
    return option.help if option.default is not None else f"{option.help} (default: {option.default_text})"


def _choices(option: Option) -> list[tuple[str, str]]:
    return [(choice, option.choice_labels.get(choice, choice)) for choice in option.choices]


def option_form_field(option: Option) -> forms.Field:
    """The form field of one option.

    Args:
        option: a declaration from ``training.options``.

    Returns:
        A choice, whole-number, number or checkbox field, its initial value the declared
        default; a number left empty stands for the default.
    """
    common = {"label": option.label or None, "help_text": _form_help(option), "initial": option.default}
    if option.choices:
        return forms.ChoiceField(choices=_choices(option), **common)
    if option.kind is bool:
        return forms.BooleanField(required=False, **common)
    # The browser's own hints (for a whole number, the first and last inside the bounds);
    # the validator decides.
    if option.kind is int:
        low = option.minimum if option.above is None else option.above + 1
        high = option.maximum if option.below is None else option.below - 1
        high = option.cap if high is None else high
        attrs, field_class = {"min": low, "max": high}, forms.IntegerField
    else:
        attrs, field_class = {"min": option.minimum, "max": option.maximum, "step": "any"}, forms.FloatField
    widget = forms.NumberInput(attrs={k: v for k, v in attrs.items() if v is not None})
    return field_class(required=False, widget=widget, validators=[_validator(option)], **common)


def option_serializer_field(option: Option) -> serializers.Field:
    """The API field of one option.

    Args:
        option: a declaration from ``training.options``.

    Returns:
        A choice, integer, number or boolean field; left out, it is the declared default,
        or ``null`` where the default depends on the model or the method.
    """
    common = {"label": option.label or None, "help_text": _api_help(option)}
    if option.default is None:
        common |= {"required": False, "allow_null": True}
    else:
        common["default"] = option.default
    if option.choices:
        return serializers.ChoiceField(choices=_choices(option), **common)
    if option.kind is bool:
        return serializers.BooleanField(**common)
    field_class = serializers.IntegerField if option.kind is int else serializers.FloatField
    # No min_value/max_value: the validator, with the trainer's message, is the only check.
    return field_class(validators=[_validator(option)], **common)


def _given(data: dict, options: dict[str, Option]) -> dict:
    return {name: data[name] for name in options if data.get(name) is not None}


def options_form(name: str, options: dict[str, Option], validate: Validate) -> type[forms.Form]:
    """A form class with one field per option, checked together by ``validate`` once each
    passed alone.

    Args:
        name: the class's name.
        options: the declarations, by name, in the order the form shows them.
        validate: the trainer's function that checks a dict of these options together
            (``train_options_validate``); its error lands on the option it blames.

    Returns:
        A form class; launch forms subclass it to add their model choices.
    """

    def clean(self):
        data = forms.Form.clean(self)
        if not any(option in self.errors for option in options):
            try:
                validate(_given(data, options))
            except OptionError as exc:
                self.add_error(exc.option if exc.option in self.fields else None, str(exc))
        return data

    fields = {option.name: option_form_field(option) for option in options.values()}
    return type(name, (forms.Form,), {**fields, "clean": clean})


def options_serializer(
    name: str, options: dict[str, Option], validate: Validate
) -> type[serializers.Serializer]:
    """A serializer class with one field per option, checked together by ``validate``.

    Args:
        name: the class's name.
        options: the declarations, by name.
        validate: as for :func:`options_form`.

    Returns:
        A serializer class; launch serializers subclass it to add their related objects.
    """

    def validate_together(self, attrs: dict) -> dict:
        try:
            validate(_given(attrs, options))
        except OptionError as exc:
            raise serializers.ValidationError(
                {exc.option: [str(exc)]} if exc.option in options else str(exc)
            ) from exc
        return attrs

    fields = {option.name: option_serializer_field(option) for option in options.values()}
    return type(name, (serializers.Serializer,), {**fields, "validate": validate_together})
