# One VPC with one public subnet: the server needs a public address for UDP
# 4433, and connectors only dial out, so no NAT gateway is needed.
resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = "${var.name_prefix}-vpc"
  }

  # The key pair is the first thing AWS sees: a key it refuses fails the
  # apply before anything that costs money exists.
  depends_on = [aws_key_pair.admin]
}

# Zones that offer each instance type. Not every zone of a region has every
# type (us-east-1e has no t3, for one), and AWS only says so when the
# instance is launched, after the network exists.
data "aws_ec2_instance_type_offerings" "server" {
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [var.server_instance_type]
  }
}

data "aws_ec2_instance_type_offerings" "connector" {
  location_type = "availability-zone"

  filter {
    name   = "instance-type"
    values = [var.connector_instance_type]
  }
}

locals {
  # Zones where both types run, sorted so the choice is stable across plans.
  usable_zones = sort(setintersection(
    data.aws_ec2_instance_type_offerings.server.locations,
    data.aws_ec2_instance_type_offerings.connector.locations,
  ))
  availability_zone = var.availability_zone != null ? var.availability_zone : try(local.usable_zones[0], null)
}

# Strip the VPC's default security group of every rule, so nothing launched
# into this VPC by hand gets an open group by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-default-closed"
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-igw"
  }
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.this.id
  cidr_block              = var.subnet_cidr
  availability_zone       = local.availability_zone
  map_public_ip_on_launch = true

  tags = {
    Name = "${var.name_prefix}-public"
  }

  lifecycle {
    precondition {
      # The subnet's network address, widened to the VPC prefix, must be the VPC.
      condition = (
        tonumber(split("/", var.subnet_cidr)[1]) >= tonumber(split("/", var.vpc_cidr)[1]) &&
        cidrsubnet("${cidrhost(var.subnet_cidr, 0)}/${split("/", var.vpc_cidr)[1]}", 0, 0) == var.vpc_cidr
      )
      error_message = "subnet_cidr must lie inside vpc_cidr."
    }

    precondition {
      condition     = local.availability_zone != null && contains(local.usable_zones, coalesce(local.availability_zone, "-"))
      error_message = "No availability zone of ${var.region} offers both ${var.server_instance_type} and ${var.connector_instance_type}${var.availability_zone != null ? " (availability_zone = ${var.availability_zone} does not)" : ""}: pick other instance types or another region. Zones offering both: ${join(", ", local.usable_zones)}."
    }
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-public"
  }
}

resource "aws_route" "internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}
