# One S3 identity per workload, each allowed only its prefixes: the very policies of the local
# MinIO (deploy/minio/policies/*.json, bucket name substituted), plus the use of the bucket's
# KMS key. Static keys, because the overlays hand the workloads AWS_* variables; on EKS, IAM
# roles for service accounts can replace them (and the keys leave the Secrets).

locals {
  s3_clients = toset(["mlflow", "api", "sync", "workbench", "pipeline"])
}

resource "aws_iam_group" "client" {
  for_each = local.s3_clients
  name     = "dpe-${each.key}"
}

resource "aws_iam_group_policy" "prefixes" {
  for_each = local.s3_clients
  name     = "dpe-${each.key}-prefixes"
  group    = aws_iam_group.client[each.key].name
  policy = replace(
    file("${path.module}/../minio/policies/${each.key}.json"),
    "arn:aws:s3:::dpe",
    aws_s3_bucket.dpe.arn
  )
}

resource "aws_iam_group_policy" "bucket_key" {
  for_each = local.s3_clients
  name     = "dpe-${each.key}-bucket-key"
  group    = aws_iam_group.client[each.key].name
  policy   = data.aws_iam_policy_document.bucket_key.json
}

data "aws_iam_policy_document" "bucket_key" {
  statement {
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.dpe.arn]
  }
}

resource "aws_iam_user" "client" {
  #checkov:skip=CKV_AWS_273:the workloads run outside AWS's SSO: a static key per workload, in its Secret only
  for_each = local.s3_clients
  name     = "dpe-${each.key}"
}

resource "aws_iam_user_group_membership" "client" {
  for_each = local.s3_clients
  user     = aws_iam_user.client[each.key].name
  groups   = [aws_iam_group.client[each.key].name]
}

resource "aws_iam_access_key" "client" {
  for_each = local.s3_clients
  user     = aws_iam_user.client[each.key].name
}
