# What the deploy needs afterwards: addresses for clients and certificates,
# and the Ansible inventory that scripts/deploy-aws writes to
# ansible/inventory.aws.yml.

output "server_public_ips" {
  description = "Elastic IPs of the relay servers, in server index order."
  value       = aws_eip.server[*].public_ip
}

output "server_private_ips" {
  description = "VPC addresses of the relay servers (what connectors in the VPC dial)."
  value       = aws_instance.server[*].private_ip
}

output "server_endpoints" {
  description = "HOST:PORT of every relay, ready for an agent's --server flag."
  value       = [for ip in aws_eip.server[*].public_ip : "${ip}:${local.quic_port}"]
}

# Plain strings (terraform output -raw) for scripts/deploy-aws, which issues
# the certificates: the server certificate must name every address dialled.
output "server_certificate_ips" {
  description = "Comma-separated addresses the server certificate must carry as IP SANs: Elastic IPs (agents) and private IPs (connectors)."
  value       = join(",", concat(aws_eip.server[*].public_ip, aws_instance.server[*].private_ip))
}

output "connector_services" {
  description = "Comma-separated service names the connectors publish (one connector certificate each)."
  value       = join(",", [for c in var.connectors : c.service])
}

output "connector_public_ips" {
  description = "Public addresses of the connector hosts (for SSH), by host name."
  value       = { for name, c in aws_instance.connector : "${var.name_prefix}-connector-${name}" => c.public_ip }
}

output "availability_zone" {
  description = "The zone of the subnet (every host is in it): var.availability_zone, or the first that offers both instance types."
  value       = aws_subnet.public.availability_zone
}

output "vpc_id" {
  description = "The VPC holding the fleet."
  value       = aws_vpc.this.id
}

output "ami_id" {
  description = "The AMI the hosts were created from."
  value       = local.ami_id
}

output "ansible_inventory" {
  description = "Ansible inventory (YAML) with groups ztna_servers and ztna_connectors."
  value = templatefile("${path.module}/inventory.tftpl", {
    ssh_user  = var.ssh_user
    quic_port = local.quic_port
    pki_dir   = trimsuffix(var.pki_dir, "/")
    servers = [
      for i, s in aws_instance.server : {
        name       = "${var.name_prefix}-server-${i}"
        public_ip  = aws_eip.server[i].public_ip
        private_ip = s.private_ip
      }
    ]
    connectors = [
      for name, c in aws_instance.connector : {
        name      = "${var.name_prefix}-connector-${name}"
        public_ip = c.public_ip
        service   = local.connector_hosts[name].service
        forward   = local.connector_hosts[name].forward
      }
    ]
  })
}
