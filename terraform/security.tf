# Security groups. Inbound is exactly: QUIC (UDP 4433) to servers from
# allowed_cidrs and from connectors, SSH from admin_cidrs, and the ops HTTP
# port (health, metrics) from admin_cidrs only when expose_ops is true.
# One rule per CIDR (aws_vpc_security_group_*_rule) so a change to one CIDR
# never rewrites the others.

resource "aws_security_group" "server" {
  name_prefix = "${var.name_prefix}-server-"
  description = "ztna relay servers"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-server"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group" "connector" {
  name_prefix = "${var.name_prefix}-connector-"
  description = "ztna app connectors (outbound only, plus SSH)"
  vpc_id      = aws_vpc.this.id

  tags = {
    Name = "${var.name_prefix}-connector"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "server_quic" {
  for_each = toset(var.allowed_cidrs)

  security_group_id = aws_security_group.server.id
  description       = "QUIC from allowed clients"
  ip_protocol       = "udp"
  from_port         = local.quic_port
  to_port           = local.quic_port
  cidr_ipv4         = each.value
}

# Connectors reach the server over its private address inside the VPC, so
# they are let in by group even when allowed_cidrs is narrow.
resource "aws_vpc_security_group_ingress_rule" "server_quic_from_connectors" {
  security_group_id            = aws_security_group.server.id
  description                  = "QUIC from connectors in this VPC"
  ip_protocol                  = "udp"
  from_port                    = local.quic_port
  to_port                      = local.quic_port
  referenced_security_group_id = aws_security_group.connector.id
}

resource "aws_vpc_security_group_ingress_rule" "server_ssh" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.server.id
  description       = "SSH from admins"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "connector_ssh" {
  for_each = toset(var.admin_cidrs)

  security_group_id = aws_security_group.connector.id
  description       = "SSH from admins"
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22
  cidr_ipv4         = each.value
}

# Ops HTTP (/healthz, /readyz, /metrics): closed unless expose_ops, and then
# only to admin_cidrs. The programs bind it to loopback by default anyway.
resource "aws_vpc_security_group_ingress_rule" "server_ops" {
  for_each = var.expose_ops ? toset(var.admin_cidrs) : toset([])

  security_group_id = aws_security_group.server.id
  description       = "ztna server ops HTTP from admins"
  ip_protocol       = "tcp"
  from_port         = 9090
  to_port           = 9090
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "connector_ops" {
  for_each = var.expose_ops ? toset(var.admin_cidrs) : toset([])

  security_group_id = aws_security_group.connector.id
  description       = "ztna connector ops HTTP from admins"
  ip_protocol       = "tcp"
  from_port         = 9091
  to_port           = 9091
  cidr_ipv4         = each.value
}

# Outbound is open: connectors dial the server and their private service,
# and hosts need Debian's mirrors for updates.
resource "aws_vpc_security_group_egress_rule" "server_all" {
  security_group_id = aws_security_group.server.id
  description       = "all outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "connector_all" {
  security_group_id = aws_security_group.connector.id
  description       = "all outbound"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
}
