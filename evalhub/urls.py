from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from evalhub.accounts.views import home
from evalhub.ops.health import healthz

urlpatterns = [
    path("", home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("catalog/", include("evalhub.catalog.urls")),
    path("annotate/", include("annotate.urls")),
    path("results/", include("evalhub.results.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("annotate.api_urls")),
    path("api/", include("evalhub.results.api_urls")),
    path("api/", include("evalhub.jobs.api_urls")),
    path("jobs/", include("evalhub.jobs.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("healthz", healthz, name="healthz"),
]
