# The process function as a container-image Lambda with the offline labeler, for accounts that
# cannot use Rekognition. The zip deployment (serverless.yml) stays small and uses Rekognition.
#   docker build -t imgpipe-process .
#   push to ECR, then in serverless.yml: functions.process.image: <account>.dkr.ecr.<region>.amazonaws.com/imgpipe-process@sha256:...
#   and set the stage parameter labeler: local
# Not built on the machines this project is developed on (they have no Docker engine).
FROM public.ecr.aws/lambda/python:3.12

COPY pyproject.toml README.md ${LAMBDA_TASK_ROOT}/
COPY src ${LAMBDA_TASK_ROOT}/src
# What the zip leaves out stays out of the image too: the local stack with its fault injection
# (a sitecustomize that fails calls on purpose), the CLI and the gallery.
RUN pip install --no-cache-dir "${LAMBDA_TASK_ROOT}[local-ml]" \
    && rm -rf ${LAMBDA_TASK_ROOT}/src \
    && python -c "import imgpipe, pathlib, shutil; root = pathlib.Path(imgpipe.__file__).parent; [shutil.rmtree(root / d) for d in ('local', 'cli', 'web')]" \
    && python -c "import imgpipe.handlers.process"
# Convert the EfficientNet checkpoint to ONNX at build time, not on a cold start.
ENV IMGPIPE_MODEL_CACHE=/opt/imgpipe-models
RUN python -m imgpipe.labels.effnet_convert

ENV LABELER=local
CMD ["imgpipe.handlers.process.handler"]
