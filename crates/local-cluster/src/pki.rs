//! Every certificate and key the control plane needs, made with rcgen (ECDSA P-256): a CA, the
//! apiserver's serving certificate, the admin client certificate and the service-account signing key.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::Error;

pub struct Pki {
    pub ca_pem: String,
    /// The CA's key (PKCS#8): kube-controller-manager signs approved CertificateSigningRequests
    /// with it, as a kubeadm cluster's does.
    pub ca_key_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
    /// An admin whose every request the audit log records (user [`crate::AUDITED_USER`]).
    pub audited_cert_pem: String,
    pub audited_key_pem: String,
    /// Signs service-account tokens (PKCS#8) ...
    pub service_account_key_pem: String,
    /// ... and verifies them (PKIX public key).
    pub service_account_pub_pem: String,
}

impl Pki {
    pub fn generate() -> Result<Pki, Error> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hanzo-local-cluster-ca");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::new(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            "kubernetes.default.svc.cluster.local".to_owned(),
            // The `kubernetes` Service's VIP and the real node's bridge address, where pods reach
            // the apiserver.
            crate::node::KUBERNETES_SERVICE_IP.to_owned(),
            crate::node::BRIDGE_IP.to_owned(),
        ])?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &issuer)?;

        let admin_key = KeyPair::generate()?;
        let mut admin = CertificateParams::new(Vec::<String>::new())?;
        admin.distinguished_name.push(DnType::CommonName, "admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin.signed_by(&admin_key, &issuer)?;

        let audited_key = KeyPair::generate()?;
        let mut audited = CertificateParams::new(Vec::<String>::new())?;
        audited
            .distinguished_name
            .push(DnType::CommonName, crate::AUDITED_USER);
        audited
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        audited.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let audited_cert = audited.signed_by(&audited_key, &issuer)?;

        let sa_key = KeyPair::generate()?;
        Ok(Pki {
            ca_pem: ca_cert.pem(),
            ca_key_pem,
            serving_cert_pem: serving_cert.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            audited_cert_pem: audited_cert.pem(),
            audited_key_pem: audited_key.serialize_pem(),
            service_account_key_pem: sa_key.serialize_pem(),
            service_account_pub_pem: sa_key.public_key_pem(),
        })
    }
}
