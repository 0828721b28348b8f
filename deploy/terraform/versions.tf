# The DPE workbench's infrastructure on AWS and a Kubernetes cluster: the object-store bucket,
# the PostgreSQL for MLflow and Airflow, the S3 users of the workloads, and the namespace and
# Secrets that deploy/k8s/overlays/production expects. README.md beside this file says how to
# apply it; tests/test_terraform.py checks it statically (no provider can be downloaded there).
terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.35"
    }
    postgresql = {
      source  = "cyrilgdn/postgresql"
      version = "~> 1.25"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project = "dpe-workbench"
    }
  }
}

provider "kubernetes" {
  config_path    = var.kubeconfig_path
  config_context = var.kubeconfig_context
}

# Roles and databases inside the instance: run from a machine that reaches it (a bastion or
# the cluster's network), since the instance is not public.
provider "postgresql" {
  host      = aws_db_instance.dpe.address
  port      = aws_db_instance.dpe.port
  username  = aws_db_instance.dpe.username
  password  = random_password.postgres_admin.result
  sslmode   = "require"
  superuser = false
}
