from django.urls import path

from evalhub.catalog import views

app_name = "catalog"
urlpatterns = [
    path("prompt-sets/", views.prompt_set_list, name="prompt_set_list"),
    path("prompt-sets/import/", views.prompt_set_import_view, name="prompt_set_import"),
    path("prompt-sets/<int:pk>/", views.prompt_set_detail, name="prompt_set_detail"),
    path("prompts/<int:pk>/", views.prompt_detail, name="prompt_detail"),
    path("images/import/", views.image_import_view, name="image_import"),
    path("images/<str:public_id>.png", views.image_file, name="image_file"),
    path("models/", views.model_version_list, name="model_version_list"),
    path("models/new/", views.model_version_create, name="model_version_create"),
    path("models/<int:pk>/", views.model_version_detail, name="model_version_detail"),
]
