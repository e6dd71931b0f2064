"""The reward-model part of the REST API (scope `train`): create a model, read it with its
versions, start a training run, follow it, and score responses with the active version."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback import schemas as feedback_schemas
from feedback.api_support import InvalidInput
from feedback.apis import ERRORS
from feedback.auth import project_for
from feedback.models import Project, Scope
from rewardmodels import selectors, services
from rewardmodels.models import Objective, RewardModel, RunStatus, TrainingRun

NOT_FOUND = OpenApiResponse(feedback_schemas.ErrorSerializer, description="No such thing here.")


def run_as_dict(run: TrainingRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "reward_model": run.reward_model_id,
        "status": run.status,
        "progress": run.progress,
        "message": run.message,
        "error": run.error,
        "version": run.version,
        "metrics": run.metrics,
        "config": run.config,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def model_as_dict(model: RewardModel) -> dict[str, Any]:
    versions = [
        {
            "version": run.version,
            "run_id": run.pk,
            "metrics": run.metrics,
            "trained_at": run.finished_at,
        }
        for run in selectors.versions_of(reward_model=model)
    ]
    active = model.active_run
    return {
        "id": model.pk,
        "name": model.name,
        "objective": model.objective,
        "config": model.config,
        "active_version": active.version if active else None,
        "versions": versions,
        "created_at": model.created_at,
    }


def _model_or_404(project: Project, model_id: int) -> RewardModel:
    model = selectors.reward_model_get(project=project, model_id=model_id)
    if model is None:
        raise NotFound("No such reward model in this project.")
    return model


def _invalid(error: services.ModelInvalid) -> InvalidInput:
    return InvalidInput(error.message, error.errors)


# Documentation of the shapes (the views parse input by hand, like the rest of the API).
class ModelInputSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=200)
    objective = serializers.ChoiceField(choices=Objective.values)
    config = serializers.DictField(
        required=False,
        allow_null=True,
        help_text=(
            "p_love: test_fraction, epochs, alpha, viewer_cap, uniform_factor, batch_size, "
            "n_features_log2, use_char, model, model_version; preference: test_fraction, C, "
            "n_features_log2, use_char, model, model_version. Omitted or null: the defaults."
        ),
    )


class VersionSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    run_id = serializers.IntegerField()
    metrics = serializers.DictField()
    trained_at = serializers.DateTimeField()


class ModelOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    objective = serializers.ChoiceField(choices=Objective.values)
    config = serializers.DictField()
    active_version = serializers.IntegerField(allow_null=True)
    versions = VersionSerializer(many=True)
    created_at = serializers.DateTimeField()


class RunOutputSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    reward_model = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.values)
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    version = serializers.IntegerField(allow_null=True)
    metrics = serializers.DictField()
    config = serializers.DictField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class TrainAcceptedSerializer(serializers.Serializer[Any]):
    run_id = serializers.IntegerField()
    status = serializers.CharField()
    url = serializers.CharField()


class ScoreItemSerializer(serializers.Serializer[Any]):
    prompt = serializers.CharField(allow_blank=True)
    response = serializers.CharField(allow_blank=True)


class ScoreInputSerializer(serializers.Serializer[Any]):
    items = ScoreItemSerializer(many=True)


class ScoreSerializer(serializers.Serializer[Any]):
    p_love = serializers.FloatField(required=False)
    reward = serializers.FloatField(required=False)


class ScoreOutputSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    scores = ScoreSerializer(many=True)


class RewardModelCreateApi(APIView):
    @extend_schema(
        operation_id="reward_models_create",
        summary="Create a reward model (P[Love] or preference)",
        request=ModelInputSerializer,
        responses={201: ModelOutputSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        project = project_for(request, Scope.TRAIN)
        body: Any = request.data
        if not isinstance(body, dict):
            raise InvalidInput("Send an object.", {"non_field_errors": ["Expected an object."]})
        try:
            model = services.reward_model_create(
                project=project,
                name=body.get("name"),
                objective=body.get("objective"),
                config=body.get("config"),
                created_by=None,
            )
        except services.ModelInvalid as error:
            raise _invalid(error) from error
        return Response(model_as_dict(model), status=status.HTTP_201_CREATED)


class RewardModelDetailApi(APIView):
    @extend_schema(
        operation_id="reward_models_retrieve",
        summary="A reward model with its versions and the active one",
        responses={
            200: ModelOutputSerializer,
            404: NOT_FOUND,
            **{c: ERRORS[c] for c in (401, 403, 503)},
        },
    )
    def get(self, request: Request, model_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        return Response(model_as_dict(_model_or_404(project, model_id)))


class RewardModelTrainApi(APIView):
    @extend_schema(
        operation_id="reward_models_train",
        summary="Start a training run on the `training` queue",
        request=None,
        responses={
            202: TrainAcceptedSerializer,
            404: NOT_FOUND,
            **{c: ERRORS[c] for c in (401, 403, 503)},
        },
        description="Each request is one run, and a run yields at most one version.",
    )
    def post(self, request: Request, model_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        run = services.training_run_start(
            reward_model=_model_or_404(project, model_id), requested_by=None
        )
        body = {
            "run_id": run.pk,
            "status": run.status,
            "url": reverse("api-training-run", args=[run.pk]),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class TrainingRunDetailApi(APIView):
    @extend_schema(
        operation_id="training_runs_retrieve",
        summary="A training run's status, progress and metrics",
        responses={
            200: RunOutputSerializer,
            404: NOT_FOUND,
            **{c: ERRORS[c] for c in (401, 403, 503)},
        },
    )
    def get(self, request: Request, run_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        run = selectors.training_run_get(project=project, run_id=run_id)
        if run is None:
            raise NotFound("No such training run in this project.")
        return Response(run_as_dict(run))


class RewardModelScoreApi(APIView):
    @extend_schema(
        operation_id="reward_models_score",
        summary="Score (prompt, response) pairs with the model's active version",
        request=ScoreInputSerializer,
        responses={
            200: ScoreOutputSerializer,
            404: NOT_FOUND,
            409: OpenApiResponse(feedback_schemas.ErrorSerializer, description="No version yet."),
            **ERRORS,
        },
        description="P[Love] models answer `{p_love}` per item; preference models `{reward}`.",
    )
    def post(self, request: Request, model_id: int) -> Response:
        project = project_for(request, Scope.TRAIN)
        model = _model_or_404(project, model_id)
        body: Any = request.data
        if not isinstance(body, dict):
            raise InvalidInput("Send an object.", {"non_field_errors": ["Expected an object."]})
        if model.active_run_id is None:
            return Response(
                {
                    "error": {
                        "code": "not_trained",
                        "message": "The model has no trained version yet; train it first.",
                    }
                },
                status=status.HTTP_409_CONFLICT,
            )
        try:
            version, scores = services.reward_model_score(
                reward_model=model, items=body.get("items")
            )
        except services.ModelInvalid as error:
            raise _invalid(error) from error
        return Response({"version": version, "scores": scores})
