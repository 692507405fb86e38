"""Where a user lands after logging in: their role's home page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from evalhub.accounts.roles import user_is_annotator, user_is_researcher


@login_required
def home(request):
    if user_is_researcher(request.user):
        return redirect("catalog:prompt_set_list")
    if user_is_annotator(request.user):
        return redirect("annotate:home")
    return render(request, "accounts/no_role.html", status=403)
