# Inputs. Every variable has a type, a description and, where a bad value
# would only fail later inside AWS (or worse, succeed), a validation block.
# IPv4 CIDRs are checked to be in canonical form (10.0.0.0/16, not 10.0.0.1/16).

variable "region" {
  type        = string
  description = "AWS region to deploy into, e.g. eu-central-1."
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must look like an AWS region name, e.g. eu-central-1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix for every resource name and Name tag; also the Fleet tag."
  default     = "ztna"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,19}$", var.name_prefix))
    error_message = "name_prefix must be 1-20 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "tags" {
  type        = map(string)
  description = "Extra tags added to every resource (Project and Fleet are always set)."
  default     = {}
}

variable "vpc_cidr" {
  type        = string
  description = "IPv4 CIDR of the VPC."
  default     = "10.42.0.0/16"

  validation {
    condition     = try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr && can(cidrnetmask(var.vpc_cidr)), false)
    error_message = "vpc_cidr must be an IPv4 CIDR in canonical form, e.g. 10.42.0.0/16."
  }
}

variable "subnet_cidr" {
  type        = string
  description = "IPv4 CIDR of the one public subnet; must lie inside vpc_cidr."
  default     = "10.42.1.0/24"

  validation {
    condition     = try(cidrsubnet(var.subnet_cidr, 0, 0) == var.subnet_cidr && can(cidrnetmask(var.subnet_cidr)), false)
    error_message = "subnet_cidr must be an IPv4 CIDR in canonical form, e.g. 10.42.1.0/24."
  }
}

variable "availability_zone" {
  type        = string
  description = "Availability zone of the subnet; null picks the first zone (by name) that offers both instance types."
  default     = null

  validation {
    condition     = var.availability_zone == null || can(regex("^[a-z0-9-]+$", var.availability_zone))
    error_message = "availability_zone must be null or a zone name such as eu-central-1a."
  }
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs allowed to reach the relay on UDP 4433 (agents and outside connectors). Access is still gated by mTLS."
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.allowed_cidrs) >= 1
    error_message = "allowed_cidrs must name at least one CIDR: without one nobody can reach the relay."
  }

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : try(cidrsubnet(c, 0, 0) == c && can(cidrnetmask(c)), false)])
    error_message = "Every allowed_cidrs entry must be an IPv4 CIDR in canonical form, e.g. 203.0.113.0/24."
  }
}

variable "admin_cidrs" {
  type        = list(string)
  description = "IPv4 CIDRs allowed to SSH in (Ansible) and, with expose_ops, to read the ops ports."

  validation {
    condition     = length(var.admin_cidrs) >= 1
    error_message = "admin_cidrs must name at least one CIDR, or Ansible cannot reach the hosts."
  }

  validation {
    condition     = alltrue([for c in var.admin_cidrs : try(cidrsubnet(c, 0, 0) == c && can(cidrnetmask(c)), false)])
    error_message = "Every admin_cidrs entry must be an IPv4 CIDR in canonical form, e.g. 198.51.100.7/32."
  }

  validation {
    condition     = !contains(var.admin_cidrs, "0.0.0.0/0")
    error_message = "admin_cidrs must not contain 0.0.0.0/0: SSH (and ops, with expose_ops) would be open to everyone."
  }
}

variable "expose_ops" {
  type        = bool
  description = "Open the ops HTTP ports (server 9090, connector 9091) to admin_cidrs. Off by default: scrape over SSH or from inside the VPC."
  default     = false
}

variable "ssh_public_key" {
  type        = string
  description = "OpenSSH public key installed for ssh_user on every host (becomes an aws_key_pair)."

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( .*)?$", var.ssh_public_key))
    error_message = "ssh_public_key must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)."
  }

  # The key material is an SSH wire blob: a u32 length and the algorithm name
  # again, then the key. Decoded as ISO-8859-1, each byte is one character,
  # so its structure can be checked here: a truncated, mistyped or made-up key
  # fails at plan, not in AWS. (An ed25519 key's 32 bytes must also be a point
  # of the curve: scripts/deploy-aws checks that before it applies.)
  validation {
    condition = try(
      substr(textdecodebase64(split(" ", var.ssh_public_key)[1], "ISO-8859-1"), 4, length(split(" ", var.ssh_public_key)[0])) == split(" ", var.ssh_public_key)[0] &&
      (split(" ", var.ssh_public_key)[0] != "ssh-ed25519" || length(textdecodebase64(split(" ", var.ssh_public_key)[1], "ISO-8859-1")) == 51) &&
      (split(" ", var.ssh_public_key)[0] != "ssh-rsa" || length(textdecodebase64(split(" ", var.ssh_public_key)[1], "ISO-8859-1")) >= 279),
      false
    )
    error_message = "ssh_public_key's key material does not decode to a key of its type (truncated, mistyped or invented?): paste the whole line of your .pub file. RSA keys need at least 2048 bits."
  }
}

variable "ssh_user" {
  type        = string
  description = "Login user of the image; Debian's cloud images use 'admin'. Written to the inventory as ansible_user."
  default     = "admin"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user))
    error_message = "ssh_user must be a POSIX user name."
  }
}

variable "ami_id" {
  type        = string
  description = "Pin an AMI instead of the newest Debian 12 amd64 image (null = look it up)."
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be null or an AMI id such as ami-0123456789abcdef0."
  }
}

variable "server_count" {
  type        = number
  description = "Number of relay servers; each gets an Elastic IP. 2 or more: a rolling upgrade restarts one while the others carry the traffic; with 1, every upgrade, configuration change or reboot is an outage (docs/deploy.md)."
  default     = 2

  validation {
    condition     = var.server_count >= 1 && floor(var.server_count) == var.server_count
    error_message = "server_count must be a whole number >= 1 (2 or more to upgrade without an outage)."
  }
}

variable "server_instance_type" {
  type        = string
  description = "EC2 instance type of the relay servers."
  default     = "t3.small"

  validation {
    condition     = length(trimspace(var.server_instance_type)) > 0
    error_message = "server_instance_type must not be empty."
  }
}

variable "connector_instance_type" {
  type        = string
  description = "EC2 instance type of the connectors."
  default     = "t3.micro"

  validation {
    condition     = length(trimspace(var.connector_instance_type)) > 0
    error_message = "connector_instance_type must not be empty."
  }
}

variable "connectors" {
  type = list(object({
    service   = string
    forward   = string
    instances = optional(number, 1)
  }))
  description = "Services to publish: one entry per service, with the private HOST:PORT the connector forwards to and how many connector hosts serve it."
  default = [
    { service = "echo", forward = "127.0.0.1:7777" },
  ]

  validation {
    condition     = length(var.connectors) >= 1
    error_message = "connectors must list at least one service."
  }

  validation {
    condition     = alltrue([for c in var.connectors : can(regex("^[A-Za-z0-9][A-Za-z0-9._-]*$", c.service)) && length(c.service) <= 63])
    error_message = "Every connectors[].service must match ^[A-Za-z0-9][A-Za-z0-9._-]*$ and be at most 63 characters."
  }

  validation {
    condition     = length(distinct([for c in var.connectors : c.service])) == length(var.connectors)
    error_message = "connectors[].service names must be unique (use instances for more hosts of one service)."
  }

  validation {
    condition = alltrue([
      for c in var.connectors : try(
        tonumber(regex("^(?:\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):([1-9][0-9]{0,4})$", c.forward)[0]) <= 65535,
        false
      )
    ])
    error_message = "Every connectors[].forward must be HOST:PORT (IPv6 as [addr]:port) with a port up to 65535."
  }

  validation {
    condition     = alltrue([for c in var.connectors : c.instances >= 1 && floor(c.instances) == c.instances])
    error_message = "Every connectors[].instances must be a whole number >= 1."
  }
}

variable "pki_dir" {
  type        = string
  description = "Controller directory of the CA and certificates, written into the Ansible inventory (relative to ansible/ unless absolute). scripts/deploy-aws passes the directory it issues into (ZTNA_PKI_DIR), so both always agree."
  default     = "pki"

  validation {
    condition     = length(var.pki_dir) > 0 && !can(regex("[\\n\"]", var.pki_dir))
    error_message = "pki_dir must be a non-empty path without quotes or newlines."
  }
}

variable "root_volume_size" {
  type        = number
  description = "Size in GiB of each host's encrypted gp3 root volume."
  default     = 8

  validation {
    condition     = var.root_volume_size >= 8 && floor(var.root_volume_size) == var.root_volume_size
    error_message = "root_volume_size must be a whole number of GiB, at least 8 (the Debian image's size)."
  }
}
