# One image for every process of the stack (api, workers, beat, flower, migrate).
FROM python:3.11-slim
WORKDIR /srv/clm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir "$(grep -E '^torch==' requirements.txt)" \
 && pip install --no-cache-dir -r requirements.txt -c constraints.txt
COPY . .
EXPOSE 8000 5555
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "workers.wsgi:create_app()"]
