# Remote state for terraform/: an S3 bucket (versioned, encrypted, private)
# and a DynamoDB table that serialises applies (LockID). Created once per
# account and region with local state, then terraform/ uses it through
# scripts/deploy-aws when ZTNA_TF_STATE_BUCKET is set (docs/deploy.md).
#
#   terraform -chdir=terraform/state init
#   terraform -chdir=terraform/state apply -var bucket=acme-ztna-state -var region=eu-central-1
terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "region" {
  type        = string
  description = "AWS region of the bucket and table (the state's, not necessarily the fleet's)."
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must look like an AWS region name, e.g. eu-central-1."
  }
}

variable "bucket" {
  type        = string
  description = "Name of the S3 bucket for the state (globally unique)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket)) && !can(regex("\\.\\.|^[0-9.]+$", var.bucket))
    error_message = "bucket must be a valid S3 bucket name: 3-63 characters of a-z, 0-9, '.', '-', not an IP address."
  }
}

variable "lock_table" {
  type        = string
  description = "Name of the DynamoDB table for state locks."
  default     = "ztna-terraform-locks"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{3,255}$", var.lock_table))
    error_message = "lock_table must be 3-255 characters of A-Z, a-z, 0-9, '_', '.', '-'."
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = "ztna", Purpose = "terraform-state" }
  }
}

resource "aws_s3_bucket" "state" {
  bucket = var.bucket

  # The state holds every address of the fleet: losing it means importing
  # everything by hand.
  lifecycle {
    prevent_destroy = true
  }
}

resource "aws_s3_bucket_versioning" "state" {
  bucket = aws_s3_bucket.state.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "state" {
  bucket                  = aws_s3_bucket.state.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "state" {
  bucket = aws_s3_bucket.state.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_dynamodb_table" "locks" {
  name         = var.lock_table
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "LockID"

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

output "backend_environment" {
  description = "What to export before scripts/deploy-aws so terraform/ keeps its state here."
  value       = "ZTNA_TF_STATE_BUCKET=${aws_s3_bucket.state.id} ZTNA_TF_LOCK_TABLE=${aws_dynamodb_table.locks.name} ZTNA_TF_STATE_REGION=${var.region}"
}
