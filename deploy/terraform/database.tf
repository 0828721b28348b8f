# PostgreSQL for MLflow (runs, registry) and Airflow (metadata): one instance, one role and
# one database each (as deploy/postgres/init-roles.sh makes them in compose), neither role a
# superuser. Private, encrypted, backed up, reachable from the cluster's nodes only.

resource "random_password" "postgres_admin" {
  length  = 32
  special = false
}

resource "random_password" "database" {
  for_each = toset(["mlflow", "airflow"])
  length   = 32
  special  = false # they go into connection URIs
}

resource "aws_db_subnet_group" "dpe" {
  name       = "dpe"
  subnet_ids = var.database_subnet_ids
}

resource "aws_security_group" "postgres" {
  name        = "dpe-postgres"
  description = "PostgreSQL of the DPE workbench: from the cluster's nodes only"
  vpc_id      = var.vpc_id

  ingress {
    description = "PostgreSQL from the cluster's nodes"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = var.cluster_cidr_blocks
  }
}

resource "aws_db_parameter_group" "dpe" {
  name   = "dpe-postgres17"
  family = "postgres17"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "dpe-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring.json
}

data "aws_iam_policy_document" "rds_monitoring" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "dpe" {
  identifier                          = "dpe"
  engine                              = "postgres"
  engine_version                      = "17"
  instance_class                      = var.database_instance_class
  allocated_storage                   = 20
  max_allocated_storage               = 100
  db_name                             = "postgres"
  username                            = "dpe_admin"
  password                            = random_password.postgres_admin.result
  db_subnet_group_name                = aws_db_subnet_group.dpe.name
  vpc_security_group_ids              = [aws_security_group.postgres.id]
  parameter_group_name                = aws_db_parameter_group.dpe.name
  publicly_accessible                 = false
  multi_az                            = var.database_multi_az
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.dpe.arn
  iam_database_authentication_enabled = true
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  auto_minor_version_upgrade          = true
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.dpe.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "dpe-final"
}

resource "postgresql_role" "client" {
  for_each = random_password.database
  name     = each.key
  login    = true
  password = each.value.result
}

resource "postgresql_database" "client" {
  for_each = postgresql_role.client
  name     = each.key
  owner    = each.value.name
}
