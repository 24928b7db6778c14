# The process function as a container-image Lambda with the offline labeler, for accounts that
# cannot use Rekognition. The zip deployment (serverless.yml) stays small and uses Rekognition.
#   docker build -t imgpipe-process .
#   push to ECR, then in serverless.yml: functions.process.image: <account>.dkr.ecr.<region>.amazonaws.com/imgpipe-process@sha256:...
#   and set the stage parameter labeler: local
# Not built on the machines this project is developed on (they have no Docker engine).
FROM public.ecr.aws/lambda/python:3.12

COPY pyproject.toml README.md ${LAMBDA_TASK_ROOT}/
COPY src ${LAMBDA_TASK_ROOT}/src
RUN pip install --no-cache-dir "${LAMBDA_TASK_ROOT}[local-ml]" \
    && rm -rf ${LAMBDA_TASK_ROOT}/src
# Convert the EfficientNet checkpoint to ONNX at build time, not on a cold start.
ENV IMGPIPE_MODEL_CACHE=/opt/imgpipe-models
RUN python -m imgpipe.labels.effnet_convert

ENV LABELER=local
CMD ["imgpipe.handlers.process.handler"]
