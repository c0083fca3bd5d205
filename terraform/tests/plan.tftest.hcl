# terraform test: the module planned (and applied) against a mocked AWS
# provider, so it runs without credentials or network (.ci/run runs it).
#   terraform -chdir=terraform init -backend=false && terraform -chdir=terraform test

mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = {
      id = "ami-0123456789abcdef0"
    }
  }

  mock_data "aws_ec2_instance_type_offerings" {
    defaults = {
      locations = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    }
  }
}

variables {
  admin_cidrs    = ["198.51.100.7/32"]
  ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDRLmKTTfC6jsCRky/zYnstmeCK1tUw1i70ZBbzQsGmw test@ztna"
}

run "two_servers_by_default" {
  command = plan

  assert {
    condition     = length(aws_instance.server) == 2 && length(aws_eip.server) == 2
    error_message = "the default fleet must have two servers (each with an Elastic IP), so it can roll"
  }
}

run "first_zone_that_offers_both_instance_types" {
  command = plan

  override_data {
    target = data.aws_ec2_instance_type_offerings.server
    values = { locations = ["eu-central-1a", "eu-central-1b", "eu-central-1c"] }
  }

  override_data {
    target = data.aws_ec2_instance_type_offerings.connector
    values = { locations = ["eu-central-1c", "eu-central-1b"] }
  }

  assert {
    condition     = aws_subnet.public.availability_zone == "eu-central-1b"
    error_message = "the subnet must be in the first zone (by name) that offers both instance types"
  }
}

run "no_zone_offers_both_types" {
  command = plan

  override_data {
    target = data.aws_ec2_instance_type_offerings.server
    values = { locations = ["us-east-1a"] }
  }

  override_data {
    target = data.aws_ec2_instance_type_offerings.connector
    values = { locations = ["us-east-1e"] }
  }

  expect_failures = [aws_subnet.public]
}

run "a_chosen_zone_without_the_types_is_refused" {
  command = plan

  variables {
    availability_zone = "eu-central-1d"
  }

  expect_failures = [aws_subnet.public]
}

run "a_placeholder_key_is_refused_at_plan" {
  command = plan

  variables {
    ssh_public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyReplaceMeWithYourOwnKeyMaterial0 you@laptop"
  }

  expect_failures = [var.ssh_public_key]
}

run "a_key_of_another_type_is_refused_at_plan" {
  command = plan

  variables {
    # ssh-rsa on the line, an ed25519 blob behind it
    ssh_public_key = "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDRLmKTTfC6jsCRky/zYnstmeCK1tUw1i70ZBbzQsGmw mixed@up"
  }

  expect_failures = [var.ssh_public_key]
}

run "the_inventory_points_at_the_pki_dir" {
  command = apply

  variables {
    pki_dir = "/srv/ztna-pki/"
  }

  assert {
    condition     = strcontains(output.ansible_inventory, "ztna_common_ca_src: \"/srv/ztna-pki/ca.pem\"")
    error_message = "the inventory must name the CA in pki_dir"
  }

  assert {
    condition     = strcontains(output.ansible_inventory, "\"/srv/ztna-pki/connector-{{ ztna_connector_service }}.pem\"")
    error_message = "the inventory must name the connector certificates in pki_dir"
  }

  assert {
    condition     = length(regexall("ztna-server-[01]:", output.ansible_inventory)) == 2
    error_message = "the inventory must list both servers"
  }
}
