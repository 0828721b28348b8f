variable "region" {
  description = "AWS region of the bucket and the database."
  type        = string
  default     = "eu-west-3"
}

variable "bucket_name" {
  description = "The object-store bucket: the model store (DPE_MODEL_STORE_URI=s3://BUCKET/store) and MLflow's artifacts (s3://BUCKET/mlflow). The overlays name `dpe`: another name must be set there too (dpe-config, mlflow's --artifacts-destination)."
  type        = string
  default     = "dpe"
}

variable "namespace" {
  description = "Kubernetes namespace of the workloads (deploy/k8s/overlays/production: `dpe`)."
  type        = string
  default     = "dpe"
}

variable "kubeconfig_path" {
  description = "kubeconfig file of the cluster the Secrets go to."
  type        = string
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  description = "kubeconfig context of that cluster (null: the current one)."
  type        = string
  default     = null
}

variable "dataset_snapshot_days" {
  description = "Age in days after which a dataset snapshot (store/datasets/) moves to Glacier Instant Retrieval (still read in milliseconds, cheaper to keep)."
  type        = number
  default     = 180
}

variable "prediction_log_days" {
  description = "Days the prediction log (store/predictions/) is kept: the same as the API's DPE_LOG_RETENTION_DAYS (default 90), as a backstop if its own clean-up stops."
  type        = number
  default     = 90
}

variable "vpc_id" {
  description = "VPC of the database (the cluster's)."
  type        = string
}

variable "database_subnet_ids" {
  description = "Private subnets of the database (two availability zones at least)."
  type        = list(string)
}

variable "cluster_cidr_blocks" {
  description = "CIDR blocks of the cluster's nodes: the only addresses that reach PostgreSQL (inside the cluster, the NetworkPolicy `mlflow` then lets only MLflow out to it)."
  type        = list(string)
}

variable "database_instance_class" {
  description = "Instance class of the PostgreSQL (MLflow's and Airflow's metadata: small)."
  type        = string
  default     = "db.t4g.small"
}

variable "database_multi_az" {
  description = "Standby in a second availability zone (MLflow's registry is the champion's truth)."
  type        = bool
  default     = true
}

variable "mlflow_username" {
  description = "MLflow's login account (its basic-auth app's administrator), used by the workbench, sync and the pipeline."
  type        = string
  default     = "dpe"
}
