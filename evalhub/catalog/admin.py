from django.contrib import admin

from evalhub.catalog.models import AlignmentQuestion, GeneratedImage, ModelVersion, Prompt, PromptSet


class AlignmentQuestionInline(admin.TabularInline):
    model = AlignmentQuestion
    extra = 0


@admin.register(PromptSet)
class PromptSetAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["text", "prompt_set", "category", "position"]
    list_filter = ["prompt_set"]
    search_fields = ["text"]
    inlines = [AlignmentQuestionInline]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "parent", "created_at"]
    list_filter = ["kind"]
    search_fields = ["name"]


@admin.register(GeneratedImage)
class GeneratedImageAdmin(admin.ModelAdmin):
    list_display = ["public_id", "model_version", "prompt", "index", "seed", "width", "height"]
    list_filter = ["model_version"]
    list_select_related = ["model_version", "prompt"]
    readonly_fields = ["public_id", "sha256", "file", "width", "height"]
