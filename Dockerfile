# Airflow 3 image with airflow-provider-userattrs (and its PostgreSQL extra) installed.
#
# Follows the official image's documented way of adding packages ("Extending the image"): switch to the
# `airflow` user and pip install, pinning apache-airflow to the image's own version so pip can never
# upgrade or downgrade Airflow by accident.
#
#   docker build -t airflow-provider-userattrs:local .
#   docker compose up            # see docker-compose.yaml
FROM apache/airflow:3.3.0-python3.11

# Directories the airflow user must own: the source tree (setuptools writes build files next to it) and
# the failure-file directory, which docker-compose.yaml mounts as a named volume (a new named volume
# takes the owner and mode of the image's directory). Group 0 + g+w: the image may run with any UID.
USER root
RUN mkdir -p /opt/userattrs/airflow_provider_userattrs /opt/airflow/userattrs-failures \
    && chown -R airflow:0 /opt/userattrs /opt/airflow/userattrs-failures \
    && chmod -R g+rwX /opt/userattrs /opt/airflow/userattrs-failures
USER airflow

# Layer 1 (cached until pyproject.toml or README.md change): the dependencies, resolved against a stub
# package so that editing the provider's code does not download them again.
COPY --chown=airflow:0 pyproject.toml README.md /opt/userattrs/
RUN echo '__version__ = "0.0.0"' > /opt/userattrs/airflow_provider_userattrs/__init__.py \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/userattrs[postgres,sqlite]"

# Layer 2: the provider itself, reinstalled over the stub without touching the dependencies.
COPY --chown=airflow:0 airflow_provider_userattrs/ /opt/userattrs/airflow_provider_userattrs/
RUN pip install --no-cache-dir --no-deps --force-reinstall "/opt/userattrs[postgres,sqlite]" \
    && rm -rf /opt/userattrs/build /opt/userattrs/*.egg-info \
    && python -c "import airflow_provider_userattrs.get_provider_info as p; p.get_provider_info()"
