from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from annotate import crowd_views, invitation_views
from evalhub import api_docs
from evalhub.accounts.views import home
from evalhub.favicon import favicon
from evalhub.ops.health import healthz

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("catalog/", include("evalhub.catalog.urls")),
    path("annotate/", include("annotate.urls")),
    path("join/<token:token>/", invitation_views.join, name="join"),
    path("crowd/<id:study_id>/", crowd_views.crowd_entry, name="crowd_entry"),
    path("results/", include("evalhub.results.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("annotate.api_urls")),
    path("api/", include("evalhub.results.api_urls")),
    path("api/", include("evalhub.jobs.api_urls")),
    path("jobs/", include("evalhub.jobs.urls")),
    # The schema and its pages for people, for signed-in users (SPECTACULAR_SETTINGS).
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", api_docs.swagger, name="api-docs"),
    path("api/redoc/", api_docs.redoc, name="api-redoc"),
    path("healthz", healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says.
    path("favicon.ico", favicon),
]

# JSON in the API's error contract under /api/, the site's pages elsewhere.
handler400 = "evalhub.error_pages.bad_request"
handler403 = "evalhub.error_pages.permission_denied"
handler404 = "evalhub.error_pages.page_not_found"
handler500 = "evalhub.error_pages.server_error"
