# The namespace and the Secrets deploy/k8s/overlays/production expects: one Secret per
# workload with only the keys it reads (deploy/k8s/base/kustomization.yaml lists them).

resource "kubernetes_namespace_v1" "dpe" {
  metadata {
    name = var.namespace
    labels = {
      # Every pod must meet the `restricted` Pod Security profile (the overlays' pods do).
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    }
  }
}

resource "random_password" "api_token" {
  length  = 48
  special = false
}

resource "random_password" "mlflow_login" {
  length  = 32
  special = false
}

resource "random_password" "mlflow_secret_key" {
  length  = 48
  special = false
}

locals {
  # Each workload's S3 key (its own IAM user), and the MLflow login of its clients.
  s3_keys = {
    for client in local.s3_clients : client => {
      AWS_ACCESS_KEY_ID     = aws_iam_access_key.client[client].id
      AWS_SECRET_ACCESS_KEY = aws_iam_access_key.client[client].secret
    }
  }
  mlflow_login = {
    MLFLOW_TRACKING_USERNAME = var.mlflow_username
    MLFLOW_TRACKING_PASSWORD = random_password.mlflow_login.result
  }
  mlflow_database_uri = format(
    #checkov:skip=CKV_SECRET_4:a URI template: the password is filled from random_password
    "postgresql+psycopg2://mlflow:%s@%s:%d/mlflow?sslmode=require",
    random_password.database["mlflow"].result,
    aws_db_instance.dpe.address,
    aws_db_instance.dpe.port
  )

  workload_secrets = {
    "dpe-api" = merge(local.s3_keys["api"], {
      DPE_API_TOKEN = random_password.api_token.result
    })
    "dpe-workbench" = merge(local.s3_keys["workbench"], local.mlflow_login)
    "dpe-sync"      = merge(local.s3_keys["sync"], local.mlflow_login)
    "dpe-pipeline"  = merge(local.s3_keys["pipeline"], local.mlflow_login)
    "dpe-mlflow" = merge(local.s3_keys["mlflow"], {
      MLFLOW_BACKEND_STORE_URI       = local.mlflow_database_uri
      MLFLOW_AUTH_ADMIN_USERNAME     = var.mlflow_username
      MLFLOW_AUTH_ADMIN_PASSWORD     = random_password.mlflow_login.result
      MLFLOW_FLASK_SERVER_SECRET_KEY = random_password.mlflow_secret_key.result
    })
  }
}

resource "kubernetes_secret_v1" "workload" {
  for_each = local.workload_secrets
  metadata {
    name      = each.key
    namespace = kubernetes_namespace_v1.dpe.metadata[0].name
  }
  data = each.value
}
