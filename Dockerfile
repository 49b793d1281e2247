# The acm-lite daemon. Build: docker build -t acm-lite:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY acm_lite ./acm_lite
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 65532 --user-group --no-create-home --home-dir /tmp nonroot
COPY --from=build /install /usr/local
COPY policies /opt/acm-lite/policies
ENV ACM_LITE_POLICIES=/opt/acm-lite/policies \
    ACM_LITE_CACHE=/var/cache/acm-lite \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["acm-lite"]
CMD ["serve", "--help"]
