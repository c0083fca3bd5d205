# Provider and shared lookups. Every resource carries the default tags, so a
# fleet can be found (and billed) by its name_prefix.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project = "ztna"
      Fleet   = var.name_prefix
    })
  }
}

# Debian's official AWS account publishes the Debian 12 (bookworm) images; the
# binary built by `npm run build` is x86_64 and needs glibc, so amd64 it is.
data "aws_ami" "debian12" {
  most_recent = true
  owners      = ["136693071363"]

  filter {
    name   = "name"
    values = ["debian-12-amd64-*"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }
}

locals {
  ami_id = var.ami_id != null ? var.ami_id : data.aws_ami.debian12.id

  # One entry per connector instance: a service with `instances = 2` becomes
  # echo-0 and echo-1, each forwarding to the same private address.
  connector_hosts = {
    for host in flatten([
      for c in var.connectors : [
        for i in range(c.instances) : {
          name    = "${c.service}-${i}"
          service = c.service
          forward = c.forward
        }
      ]
    ]) : host.name => host
  }
}

locals {
  # The relay's QUIC port; the Ansible roles start the server on the same one.
  quic_port = 4433
}
