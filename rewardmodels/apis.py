"""The reward-model part of the REST API (scope `train`): create a model, read it with its
versions, start a training run, follow it, and score responses with the active version."""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import datasets
from feedback.core.access import found_or_404
from feedback.core.api import (
    ERRORS,
    READ_ERRORS,
    MethodBooleanField,
    MethodCharField,
    MethodDictField,
    MethodListField,
    NdjsonRenderer,
    OrjsonRenderer,
    StrictBooleanField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    error_responses,
    validated_body,
)
from feedback.core.auth import project_for
from feedback.core.errors import NotReady, ValidationFailed
from feedback.core.jobs import JobStatus
from feedback.core.outbound import redact_url
from feedback.models import Project, Scope
from rewardmodels import selectors, services
from rewardmodels.datasets import PARTS
from rewardmodels.models import (
    BuildStatus,
    C3POBuild,
    Generator,
    Judge,
    JudgeRun,
    JudgeTarget,
    Objective,
    RewardModel,
    ShadowRun,
    TrainingRun,
    VerbalFeedback,
)

NOT_FOUND = "No such thing here."
# What an operation on one thing of the project, with nothing else to refuse, may answer.
ONE_THING_ERRORS = error_responses(*READ_ERRORS, not_found=NOT_FOUND)


def _model_or_404(project: Project, model_id: int) -> RewardModel:
    model = selectors.reward_model_get(project=project, model_id=model_id)
    return found_or_404(model, "No such reward model in this project.")


# Each request body is checked by the serializer that documents it, and its validated data is
# what the service is called with (`validated_body`), so the names are the service's; the
# service checks the rules a page's form passes through too.
class ModelInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    objective = serializers.ChoiceField(choices=Objective.values)
    config = serializers.DictField(
        default=None,
        allow_null=True,
        help_text=(
            "p_love: test_fraction, epochs, alpha, viewer_cap, uniform_factor, batch_size, "
            'n_features_log2, use_char, model, model_version, selection ("validation": alpha '
            'and feature groups chosen on the newest training rows, or "off"), '
            'personalization ("none" or "viewer": per-viewer adjustments, used when '
            "scoring with a user_ref), include_simulated; preference: test_fraction, C, "
            "n_features_log2, use_char, model, model_version. Omitted or null: the defaults."
        ),
    )


class VersionSerializer(serializers.Serializer[TrainingRun]):
    version = serializers.IntegerField()
    run_id = serializers.IntegerField(source="pk")
    metrics = serializers.DictField()
    trained_at = serializers.DateTimeField(source="finished_at")


# A reward model, as creating it and reading it answer.
class ModelOutputSerializer(serializers.Serializer[RewardModel]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    objective = serializers.ChoiceField(choices=Objective.values)
    config = serializers.DictField()
    active_version = serializers.IntegerField(source="active_run.version", allow_null=True)
    versions = MethodListField(child=VersionSerializer())
    created_at = serializers.DateTimeField()

    def get_versions(self, model: RewardModel) -> list[TrainingRun]:
        return list(selectors.versions_of(reward_model=model))


class ScoreItemSerializer(serializers.Serializer[Any]):
    prompt = StrictCharField(allow_blank=True)
    response = StrictCharField(allow_blank=True)
    user_ref = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=255,
        help_text=(
            "The viewer, as feedback names them: a personalised P[Love] scores for them; "
            "an unknown or missing one gets the global prediction."
        ),
    )


class ScoreInputSerializer(serializers.Serializer[Any]):
    items: serializers.ListSerializer[Any] = serializers.ListSerializer(
        child=ScoreItemSerializer(),
        allow_empty=False,
        max_length=services.reward_models.MAX_SCORE_ITEMS,
    )


class ScoreSerializer(serializers.Serializer[dict[str, Any]]):
    p_love = serializers.FloatField(required=False)
    personalized = serializers.BooleanField(
        required=False, help_text="P[Love]: the viewer's own adjustments were used."
    )
    reward = serializers.FloatField(required=False)


class RewardModelCreateApi(APIView):
    @extend_schema(
        operation_id="reward_models_create",
        summary="Create a reward model (P[Love] or preference)",
        request=ModelInputSerializer,
        responses={201: ModelOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.TRAIN)
        model = services.reward_model_create(
            project=project, created_by=None, **validated_body(request, ModelInputSerializer)
        )
        return Response(ModelOutputSerializer(model).data, status=status.HTTP_201_CREATED)


class RewardModelDetailApi(APIView):
    @extend_schema(
        operation_id="reward_models_retrieve",
        summary="A reward model with its versions and the active one",
        responses={200: ModelOutputSerializer, **ONE_THING_ERRORS},
    )
    def get(self, request: Request, model_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        return Response(ModelOutputSerializer(_model_or_404(project, model_id)).data)


class RewardModelTrainApi(APIView):
    @extend_schema_serializer(component_name="TrainAccepted")
    class OutputSerializer(serializers.Serializer[TrainingRun]):
        run_id = serializers.IntegerField(source="pk")
        status = serializers.CharField()
        url = MethodCharField()

        def get_url(self, run: TrainingRun) -> str:
            return reverse("api-training-run", args=[run.pk])

    @extend_schema(
        operation_id="reward_models_train",
        summary="Start a training run on the `training` queue",
        request=None,
        responses={202: OutputSerializer, **ONE_THING_ERRORS},
        description="Each request is one run, and a run yields at most one version.",
    )
    def post(self, request: Request, model_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        run = services.training_run_start(
            reward_model=_model_or_404(project, model_id), requested_by=None
        )
        return Response(self.OutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(APIView):
    @extend_schema_serializer(component_name="RunOutput")
    class OutputSerializer(serializers.Serializer[TrainingRun]):
        id = serializers.IntegerField()
        reward_model = serializers.IntegerField(source="reward_model_id")
        status = serializers.ChoiceField(choices=JobStatus.values)
        progress = serializers.FloatField()
        message = serializers.CharField()
        error = serializers.CharField()
        version = serializers.IntegerField(allow_null=True)
        metrics = serializers.DictField()
        config = serializers.DictField()
        created_at = serializers.DateTimeField()
        started_at = serializers.DateTimeField(allow_null=True)
        finished_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="training_runs_retrieve",
        summary="A training run's status, progress and metrics",
        responses={200: OutputSerializer, **ONE_THING_ERRORS},
    )
    def get(self, request: Request, run_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        run = found_or_404(
            selectors.training_run_get(project=project, run_id=run_id),
            "No such training run in this project.",
        )
        return Response(self.OutputSerializer(run).data)


class RewardModelScoreApi(APIView):
    @extend_schema_serializer(component_name="ScoreOutput")
    class OutputSerializer(serializers.Serializer[Any]):
        version = serializers.IntegerField()
        scores = ScoreSerializer(many=True)

    @extend_schema(
        operation_id="reward_models_score",
        summary="Score (prompt, response) pairs with the model's active version",
        request=ScoreInputSerializer,
        responses={
            200: OutputSerializer,
            **error_responses(*ERRORS, not_found=NOT_FOUND, not_ready="No version yet."),
        },
        description=(
            "Send 1 to 1,000 items. P[Love] models answer `{p_love, personalized}` per item; "
            "preference models `{reward}` (they ignore `user_ref`). The items are checked "
            "first: a model with no trained version answers a valid request with 409."
        ),
    )
    def post(self, request: Request, model_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        model = _model_or_404(project, model_id)
        body = validated_body(request, ScoreInputSerializer)
        version, scores = services.reward_model_score(reward_model=model, **body)
        return Response(self.OutputSerializer({"version": version, "scores": scores}).data)


# --- C3PO ------------------------------------------------------------------------------------


class VerbalFeedbackInputSerializer(serializers.Serializer[Any]):
    text = StrictCharField(max_length=services.c3po.MAX_TEXT)
    domain = StrictCharField(required=False, allow_blank=True, allow_null=True)
    effect = StrictCharField(required=False, allow_blank=True, allow_null=True)


class GeneratorInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    base_url = StrictCharField(
        help_text=(
            "e.g. https://api.openai.com/v1. Loopback, private and other internal addresses are "
            "refused unless the host is in the server's OUTBOUND_ALLOWED_HOSTS; no user name or "
            "password in the URL."
        )
    )
    model = StrictCharField(max_length=200)
    api_key = StrictCharField(required=False, allow_blank=True, allow_null=True)
    temperature = StrictFloatField(required=False, min_value=0, max_value=2)
    concurrency = StrictIntegerField(required=False, min_value=1, max_value=32)


class BuildInputSerializer(serializers.Serializer[Any]):
    generator = StrictIntegerField(
        source="generator_id",
        required=False,
        allow_null=True,
        help_text="A generator's id; none: the human path.",
    )
    counts = serializers.DictField(
        required=False,
        allow_null=True,
        help_text=(
            "categories, in_scope_per_category, near_scope_per_category, out_of_scope, "
            "test_fraction; the defaults follow the paper's proportions."
        ),
    )
    review = StrictBooleanField(
        required=False, help_text="Annotators review generated revisions before they count."
    )
    seed = StrictCharField(
        validators=[
            RegexValidator(f"^{services.c3po.SEED_PATTERN.pattern}$", services.c3po.SEED_RULE)
        ],
        required=False,
        allow_null=True,
        help_text="Fixes the out-of-scope sample and the split (random when left out).",
    )


# A build, as starting, reading and resuming it answer.
class BuildOutputSerializer(serializers.Serializer[C3POBuild]):
    id = serializers.IntegerField()
    feedback = serializers.IntegerField(source="feedback_id")
    status = serializers.ChoiceField(
        choices=BuildStatus.values,
        help_text=(
            "Every job's statuses and `review` (waiting for annotators); nothing cancels a "
            "build today, so a build is never `cancelled`."
        ),
    )
    stage = serializers.IntegerField(
        help_text=f"Stages done, 0 to {len(C3POBuild.STAGES)} (the names are in `stages`)."
    )
    stages = serializers.ListField(child=serializers.CharField(), source="STAGES")
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    generator = MethodDictField(allow_null=True)
    review = serializers.BooleanField()
    seed = serializers.CharField()
    requested = serializers.DictField(source="counts")
    counts = MethodDictField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    dataset = MethodDictField(allow_null=True, child=serializers.CharField())

    def get_generator(self, build: C3POBuild) -> dict[str, Any] | None:
        generator = build.generator
        if generator is None:
            return None
        return {"id": generator.pk, "name": generator.name, "model": generator.model}

    def get_counts(self, build: C3POBuild) -> dict[str, Any]:
        return selectors.build_counts(build=build)

    def get_dataset(self, build: C3POBuild) -> dict[str, str] | None:
        if build.status != BuildStatus.SUCCEEDED:
            return None
        url = reverse("api-c3po-dataset", args=[build.pk])
        return {part: f"{url}?part={part}" for part in PARTS}


class VerbalFeedbackCreateApi(APIView):
    @extend_schema_serializer(component_name="VerbalFeedbackOutput")
    class OutputSerializer(serializers.Serializer[VerbalFeedback]):
        id = serializers.IntegerField()
        text = serializers.CharField()
        domain = serializers.CharField()
        effect = serializers.CharField()
        critique = serializers.IntegerField(source="critique_id", allow_null=True)
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="verbal_feedback_create",
        summary="Record one sentence of verbal feedback",
        request=VerbalFeedbackInputSerializer,
        responses={201: OutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.TRAIN)
        feedback = services.c3po.verbal_feedback_create(
            project=project, **validated_body(request, VerbalFeedbackInputSerializer)
        )
        return Response(self.OutputSerializer(feedback).data, status=status.HTTP_201_CREATED)


class GeneratorSaveApi(APIView):
    @extend_schema_serializer(component_name="GeneratorOutput")
    class OutputSerializer(serializers.Serializer[Generator]):
        id = serializers.IntegerField()
        name = serializers.CharField()
        base_url = MethodCharField()
        model = serializers.CharField()
        has_api_key = MethodBooleanField()
        temperature = serializers.FloatField()
        concurrency = serializers.IntegerField()

        def get_base_url(self, generator: Generator) -> str:
            return redact_url(generator.base_url)

        def get_has_api_key(self, generator: Generator) -> bool:
            return bool(generator.api_key)

    @extend_schema(
        operation_id="generators_save",
        summary="Register (or change, by name) an OpenAI-compatible chat completions server",
        request=GeneratorInputSerializer,
        responses={200: OutputSerializer, **ERRORS},
        description="The key is stored and never returned; leave it out to keep a stored one.",
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.TRAIN)
        generator = services.c3po.generator_save(
            project=project, **validated_body(request, GeneratorInputSerializer)
        )
        return Response(self.OutputSerializer(generator).data)


class BuildCreateApi(APIView):
    @extend_schema(
        operation_id="c3po_builds_create",
        summary="Start a C3PO build of the feedback's dataset",
        request=BuildInputSerializer,
        responses={202: BuildOutputSerializer, **error_responses(*ERRORS, not_found=NOT_FOUND)},
        description=(
            "A staged job on the `c3po` queue: categories, in-scope, near-scope and "
            "out-of-scope prompts, baseline and revised responses, a train/test split."
        ),
    )
    def post(self, request: Request, feedback_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        feedback = found_or_404(
            selectors.verbal_feedback_get(project=project, feedback_id=feedback_id),
            "No such verbal feedback in this project.",
        )
        build = services.c3po.build_start(
            feedback=feedback, **validated_body(request, BuildInputSerializer)
        )
        return Response(BuildOutputSerializer(build).data, status=status.HTTP_202_ACCEPTED)


def _build_or_404(project: Project, build_id: int) -> C3POBuild:
    build = selectors.build_get(project=project, build_id=build_id)
    return found_or_404(build, "No such C3PO build in this project.")


class BuildDetailApi(APIView):
    @extend_schema(
        operation_id="c3po_builds_retrieve",
        summary="A C3PO build's status, stage, progress and counts",
        responses={200: BuildOutputSerializer, **ONE_THING_ERRORS},
    )
    def get(self, request: Request, build_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        return Response(BuildOutputSerializer(_build_or_404(project, build_id)).data)


class BuildResumeApi(APIView):
    @extend_schema(
        operation_id="c3po_builds_resume",
        summary="Resume a failed build from the stage where it stopped",
        request=None,
        responses={
            202: BuildOutputSerializer,
            **error_responses(*READ_ERRORS, not_found=NOT_FOUND, not_ready="Not failed."),
        },
    )
    def post(self, request: Request, build_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        build = _build_or_404(project, build_id)
        if build.status != BuildStatus.FAILED:
            raise NotReady(f"The build is {build.status}; only a failed build can be resumed.")
        build = services.c3po.build_resume(build=build)
        return Response(BuildOutputSerializer(build).data, status=status.HTTP_202_ACCEPTED)


class BuildDatasetApi(APIView):
    renderer_classes = [OrjsonRenderer, NdjsonRenderer]

    @extend_schema(
        operation_id="c3po_builds_dataset",
        summary="One part of a finished build's dataset as JSON Lines",
        parameters=[
            OpenApiParameter("part", str, enum=list(PARTS), required=True),
        ],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.STR,
            **error_responses(400, *READ_ERRORS, not_found=NOT_FOUND, not_ready="Not finished."),
        },
        description=(
            "`dpo`: prompt, chosen (revised), rejected (baseline) for in-scope prompts; "
            "`sft_near` / `sft_out`: prompt, completion (baseline). Every row has feedback_id, "
            "build_id, category, split and item_id."
        ),
    )
    def get(self, request: Request, build_id: int) -> StreamingHttpResponse:
        project = project_for(request, Scope.TRAIN)
        build = _build_or_404(project, build_id)
        part = request.query_params.get("part", "")
        if part not in PARTS:
            raise ValidationFailed(
                {"part": [f"Must be one of: {', '.join(PARTS)}."]}, "Unknown part."
            )
        if build.status != BuildStatus.SUCCEEDED:
            raise NotReady(
                f"The build is {build.status}; its dataset is served once it has succeeded."
            )
        rows = selectors.build_dataset(build=build, part=part)
        return datasets.jsonl_response(rows, f"c3po-{build.pk}-{part}.jsonl")


# --- shadow users ----------------------------------------------------------------------------


class ShadowRunInputSerializer(serializers.Serializer[Any]):
    reward_model = StrictIntegerField(help_text="A P[Love] model of the project with a version.")
    since = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Exposures shown at or after this time."
    )
    until = serializers.DateTimeField(
        required=False, allow_null=True, help_text="Exposures shown before this time."
    )
    threshold = StrictFloatField(
        required=False,
        allow_null=True,
        min_value=0.0,
        max_value=1.0,
        help_text=(
            "A simulated Love where P[Love] is at least this. Left out: each viewer's own "
            "threshold (the one matching their observed Love rate), else the global one."
        ),
    )


class ShadowRunOutputSerializer(serializers.Serializer[ShadowRun]):
    id = serializers.IntegerField()
    reward_model = serializers.IntegerField(source="reward_model_id")
    version = serializers.IntegerField(source="training_run.version", allow_null=True)
    producer = serializers.CharField(
        help_text="How its simulated feedback names it (`producer` on each record)."
    )
    status = serializers.ChoiceField(choices=JobStatus.values)
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    counts = serializers.DictField(
        help_text="exposures, simulated_loves, viewers, threshold (global), own_thresholds."
    )
    agreement = serializers.DictField(
        help_text=(
            "On held-out real reactions (exposures newer than the version's training data), "
            "for viewers with a real Love there: `viewers` (each with rows, loved, "
            "simulated_loves, roc_auc, accuracy, kappa, threshold) and `overall`."
        )
    )
    url = MethodCharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, run: ShadowRun) -> str:
        return reverse("api-shadow-run", args=[run.pk])


class ShadowRunCreateApi(APIView):
    @extend_schema(
        operation_id="shadow_runs_create",
        summary="Start a shadow run: simulated Loves for exposures nobody reacted to",
        request=ShadowRunInputSerializer,
        responses={
            202: ShadowRunOutputSerializer,
            **error_responses(*ERRORS, not_ready="The model has no version yet."),
        },
        description=(
            "A job on the `training` queue. Its records are simulated feedback (source "
            "`simulated`, with the model version and probability): never counted as people's, "
            "and in datasets only with `include_simulated=true`."
        ),
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.TRAIN)
        body = validated_body(request, ShadowRunInputSerializer)
        model = selectors.reward_model_get(project=project, model_id=body.pop("reward_model"))
        if model is None:
            raise ValidationFailed(
                {"reward_model": ["No such reward model in this project."]},
                services.shadow.INVALID,
            )
        run = services.shadow.shadow_run_start(reward_model=model, requested_by=None, **body)
        return Response(ShadowRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ShadowRunDetailApi(APIView):
    @extend_schema(
        operation_id="shadow_runs_retrieve",
        summary="A shadow run's status, progress, counts and agreement with real reactions",
        responses={200: ShadowRunOutputSerializer, **ONE_THING_ERRORS},
    )
    def get(self, request: Request, run_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        run = found_or_404(
            selectors.shadow_run_get(project=project, run_id=run_id),
            "No such shadow run in this project.",
        )
        return Response(ShadowRunOutputSerializer(run).data)


# --- LLM judges ------------------------------------------------------------------------------


class JudgeInputSerializer(serializers.Serializer[Any]):
    name = StrictCharField(max_length=200)
    generator = StrictIntegerField(source="generator_id", help_text="A generator's id.")
    rubric = StrictCharField(max_length=10_000)
    target = serializers.ChoiceField(choices=JudgeTarget.values)
    viewer = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="A user_ref: the judge speaks for this viewer, shown their past feedback.",
    )


class JudgeOutputSerializer(serializers.Serializer[Judge]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    generator = serializers.IntegerField(source="generator_id")
    rubric = serializers.CharField()
    target = serializers.ChoiceField(choices=JudgeTarget.values)
    viewer = serializers.CharField()
    agreement = MethodDictField(
        help_text=(
            "document_relevance: `relevance` with Cohen's kappa per annotator and "
            "Krippendorff's alpha; answer: `verdicts` with accuracy against people's "
            "reactions; `decisions`: proposals accepted and rejected per annotator."
        )
    )
    created_at = serializers.DateTimeField()

    def get_agreement(self, judge: Judge) -> dict[str, Any]:
        return selectors.judge_agreement(judge=judge)


class JudgeRunInputSerializer(serializers.Serializer[Any]):
    filters = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="model, model_version, since, until (answers created), limit (1 to 1000).",
    )


class JudgeRunOutputSerializer(serializers.Serializer[JudgeRun]):
    id = serializers.IntegerField()
    judge = serializers.IntegerField(source="judge_id")
    producer = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.values)
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    filters = serializers.DictField()
    counts = serializers.DictField()
    url = MethodCharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, run: JudgeRun) -> str:
        return reverse("api-judge-run", args=[run.pk])


def _judge_or_404(project: Project, judge_id: int) -> Judge:
    return found_or_404(
        selectors.judge_get(project=project, judge_id=judge_id), "No such judge in this project."
    )


class JudgeCreateApi(APIView):
    @extend_schema(
        operation_id="judges_create",
        summary="Create an LLM judge over one of the project's generators",
        request=JudgeInputSerializer,
        responses={201: JudgeOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.TRAIN)
        judge = services.judges.judge_create(
            project=project, **validated_body(request, JudgeInputSerializer)
        )
        return Response(JudgeOutputSerializer(judge).data, status=status.HTTP_201_CREATED)


class JudgeDetailApi(APIView):
    @extend_schema(
        operation_id="judges_retrieve",
        summary="A judge with its agreement with people",
        responses={200: JudgeOutputSerializer, **ONE_THING_ERRORS},
    )
    def get(self, request: Request, judge_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        return Response(JudgeOutputSerializer(_judge_or_404(project, judge_id)).data)


class JudgeRunCreateApi(APIView):
    @extend_schema(
        operation_id="judge_runs_create",
        summary="Run a judge over the answers a filter selects",
        request=JudgeRunInputSerializer,
        responses={202: JudgeRunOutputSerializer, **error_responses(*ERRORS, not_found=NOT_FOUND)},
        description=(
            "A job on the `c3po` queue. What the judge says is simulated feedback (source "
            "`simulated`): verdicts with critiques, or proposals annotators accept or reject "
            "in debug mode."
        ),
    )
    def post(self, request: Request, judge_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        judge = _judge_or_404(project, judge_id)
        run = services.judges.judge_run_start(
            judge=judge, **validated_body(request, JudgeRunInputSerializer)
        )
        return Response(JudgeRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class JudgeRunDetailApi(APIView):
    @extend_schema(
        operation_id="judge_runs_retrieve",
        summary="A judge run's status, progress and counts",
        responses={200: JudgeRunOutputSerializer, **ONE_THING_ERRORS},
    )
    def get(self, request: Request, run_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        run = found_or_404(
            selectors.judge_run_get(project=project, run_id=run_id),
            "No such judge run in this project.",
        )
        return Response(JudgeRunOutputSerializer(run).data)
