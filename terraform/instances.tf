# Hosts: relay servers (each with an Elastic IP, so clients and certificates
# keep one address across stop/start) and connectors. Ansible installs and
# configures ztna on them afterwards; no user_data here.

resource "aws_key_pair" "admin" {
  key_name_prefix = "${var.name_prefix}-admin-"
  public_key      = var.ssh_public_key
}

resource "aws_instance" "server" {
  count = var.server_count

  ami                    = local.ami_id
  instance_type          = var.server_instance_type
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.server.id]
  key_name               = aws_key_pair.admin.key_name

  # IMDSv2 only, and one hop: containers on the host cannot reach the metadata service.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    encrypted   = true
    volume_type = "gp3"
    volume_size = var.root_volume_size
  }

  tags = {
    Name = "${var.name_prefix}-server-${count.index}"
    Role = "ztna-server"
  }

  lifecycle {
    # A newer Debian image must not replace a running relay by surprise;
    # roll hosts deliberately (docs/deploy.md).
    ignore_changes = [ami]
  }
}

resource "aws_eip" "server" {
  count = var.server_count

  domain   = "vpc"
  instance = aws_instance.server[count.index].id

  tags = {
    Name = "${var.name_prefix}-server-${count.index}"
  }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_instance" "connector" {
  for_each = local.connector_hosts

  ami                    = local.ami_id
  instance_type          = var.connector_instance_type
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [aws_security_group.connector.id]
  key_name               = aws_key_pair.admin.key_name

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    encrypted   = true
    volume_type = "gp3"
    volume_size = var.root_volume_size
  }

  tags = {
    Name    = "${var.name_prefix}-connector-${each.key}"
    Role    = "ztna-connector"
    Service = each.value.service
  }

  lifecycle {
    ignore_changes = [ami]
  }
}
