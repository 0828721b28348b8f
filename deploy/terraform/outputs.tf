output "bucket" {
  description = "The object-store bucket (DPE_MODEL_STORE_URI=s3://BUCKET/store)."
  value       = aws_s3_bucket.dpe.bucket
}

output "kms_key_arn" {
  description = "The KMS key of the bucket and the database."
  value       = aws_kms_key.dpe.arn
}

output "database_endpoint" {
  description = "host:port of the PostgreSQL (databases mlflow and airflow)."
  value       = aws_db_instance.dpe.endpoint
}

output "namespace" {
  description = "The namespace to apply deploy/k8s/overlays/production in."
  value       = kubernetes_namespace_v1.dpe.metadata[0].name
}

output "workload_secrets" {
  description = "The Secrets made in that namespace, and the keys of each (values stay in the state)."
  value       = { for name, data in local.workload_secrets : name => sort(keys(data)) }
}

output "airflow_database_uri" {
  description = "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN for an Airflow beside the cluster."
  value = format(
    #checkov:skip=CKV_SECRET_4:a URI template: the password is filled from random_password
    "postgresql+psycopg2://airflow:%s@%s:%d/airflow?sslmode=require",
    random_password.database["airflow"].result,
    aws_db_instance.dpe.address,
    aws_db_instance.dpe.port
  )
  sensitive = true
}
