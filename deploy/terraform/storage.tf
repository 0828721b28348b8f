# The object store: the model store (store/: datasets, the champion, the prediction log) and
# MLflow's artifacts (mlflow/). Versioned, encrypted with its own KMS key, never public, TLS
# only; old dataset snapshots and prediction logs expire.

resource "aws_kms_key" "dpe" {
  description             = "DPE workbench: the bucket and the database"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

data "aws_caller_identity" "current" {}

# The account administers the key; the clients' use of it is granted by their own policies.
data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:a key policy's "*" is the key itself; this is AWS's default key policy
  #checkov:skip=CKV_AWS_356:a key policy's "*" is the key itself; this is AWS's default key policy
  #checkov:skip=CKV_AWS_109:a key policy's "*" is the key itself; this is AWS's default key policy
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_s3_bucket" "dpe" {
  #checkov:skip=CKV_AWS_18:server access logs need a second bucket: left to the account (CloudTrail data events)
  #checkov:skip=CKV_AWS_144:one region: the store is rebuilt from the ADEME source and MLflow, not replicated
  #checkov:skip=CKV2_AWS_62:no consumer of bucket events: sync polls the MLflow registry
  bucket = var.bucket_name
}

resource "aws_s3_bucket_ownership_controls" "dpe" {
  bucket = aws_s3_bucket.dpe.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "dpe" {
  bucket                  = aws_s3_bucket.dpe.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "dpe" {
  bucket = aws_s3_bucket.dpe.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "dpe" {
  bucket = aws_s3_bucket.dpe.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.dpe.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "dpe" {
  bucket     = aws_s3_bucket.dpe.id
  depends_on = [aws_s3_bucket_versioning.dpe]

  # Dataset snapshots (one key per dataset version): never deleted, since a champion's
  # training data and drift's reference may be old; moved to cheaper storage as they age.
  rule {
    id     = "dataset-snapshots"
    status = "Enabled"
    filter {
      prefix = "store/datasets/"
    }
    transition {
      days          = var.dataset_snapshot_days
      storage_class = "GLACIER_IR"
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  # The prediction log: the API deletes days past DPE_LOG_RETENTION_DAYS; this is the backstop.
  rule {
    id     = "prediction-log"
    status = "Enabled"
    filter {
      prefix = "store/predictions/"
    }
    expiration {
      days = var.prediction_log_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "unfinished-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# Only over TLS.
resource "aws_s3_bucket_policy" "dpe" {
  bucket     = aws_s3_bucket.dpe.id
  policy     = data.aws_iam_policy_document.tls_only.json
  depends_on = [aws_s3_bucket_public_access_block.dpe]
}

data "aws_iam_policy_document" "tls_only" {
  statement {
    sid       = "DenyPlainHttp"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.dpe.arn, "${aws_s3_bucket.dpe.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
