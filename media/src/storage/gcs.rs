//! Google Cloud Storage through the official `google-cloud-storage` crate: objects are written
//! and read with its `Storage` client (the JSON API). The crate offers deletes only on
//! `StorageControl`, over gRPC, which emulators (fake-gcs-server) do not serve; so deletes are
//! one JSON API request of our own, authorized by the same credentials. An emulator is reached
//! by setting `endpoint`.

use super::{ObjectStore, StorageError, check_key};
use google_cloud_auth::credentials::{self, CacheableResource, Credentials};
use google_cloud_auth::signer::Signer;
use google_cloud_gax::error::rpc::Code;
use google_cloud_storage::builder::storage::SignedUrlBuilder;
use google_cloud_storage::client::Storage;
use google_cloud_storage::model_ext::ReadRange;
use std::path::PathBuf;
use std::time::Duration;

/// Objects never change once written (a new image gets a new id), so caches may keep them.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Clone)]
pub struct GcsSettings {
    /// The bucket's name (not its `projects/_/buckets/…` path).
    pub bucket: String,
    /// Put before every key (`fishapp/` say), so that one bucket can hold several deployments.
    pub prefix: String,
    /// Another endpoint than Google's (an emulator, a private endpoint).
    pub endpoint: Option<String>,
    pub credentials: GcsCredentials,
    pub urls: GcsUrls,
}

#[derive(Debug, Clone)]
pub enum GcsCredentials {
    /// Application Default Credentials: the environment's service account on Google Cloud, or
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    ApplicationDefault,
    /// A service account key file (JSON).
    ServiceAccountKeyFile(PathBuf),
    /// No credentials at all: only for emulators.
    Anonymous,
}

#[derive(Debug, Clone)]
pub enum GcsUrls {
    /// The bucket is readable by everyone: `<base_url>/<object>`, where the base is the
    /// bucket's public address (`https://storage.googleapis.com/<bucket>`) unless given (a CDN).
    Public { base_url: Option<String> },
    /// The bucket is private: every URL is a V4 signed URL valid for `ttl`.
    Signed { ttl: Duration },
}

const GOOGLE_ENDPOINT: &str = "https://storage.googleapis.com";

#[derive(Debug, Clone)]
pub struct Gcs {
    objects: Storage,
    /// For deletes (see the module's note).
    http: reqwest::Client,
    credentials: Credentials,
    endpoint: String,
    bucket: String,
    /// `projects/_/buckets/<bucket>`, as the client names it.
    bucket_path: String,
    prefix: String,
    urls: Urls,
}

#[derive(Debug, Clone)]
enum Urls {
    Public(String),
    Signed {
        signer: Signer,
        ttl: Duration,
        endpoint: Option<String>,
    },
}

impl Gcs {
    pub async fn connect(settings: GcsSettings) -> Result<Self, StorageError> {
        let config =
            |what: &str, e: &dyn std::fmt::Display| StorageError::Config(format!("{what}: {e}"));
        if settings.bucket.is_empty() {
            return Err(StorageError::Config("no bucket is configured".into()));
        }
        let key = match &settings.credentials {
            GcsCredentials::ServiceAccountKeyFile(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| config(&format!("reading {}", path.display()), &e))?;
                let json: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| config(&format!("parsing {}", path.display()), &e))?;
                Some(json)
            }
            _ => None,
        };
        let credentials: Credentials = match (&settings.credentials, &key) {
            (GcsCredentials::Anonymous, _) => credentials::anonymous::Builder::new().build(),
            (_, Some(json)) => credentials::service_account::Builder::new(json.clone())
                .build()
                .map_err(|e| config("service account key", &e))?,
            (_, None) => credentials::Builder::default()
                .build()
                .map_err(|e| config("application default credentials", &e))?,
        };
        let urls = match &settings.urls {
            GcsUrls::Public { base_url } => Urls::Public(
                base_url
                    .clone()
                    .unwrap_or_else(|| {
                        let host = settings.endpoint.as_deref().unwrap_or(GOOGLE_ENDPOINT);
                        format!("{}/{}", host.trim_end_matches('/'), settings.bucket)
                    })
                    .trim_end_matches('/')
                    .to_owned(),
            ),
            GcsUrls::Signed { ttl } => {
                let signer = match (&settings.credentials, key) {
                    (GcsCredentials::Anonymous, _) => {
                        return Err(StorageError::Config(
                            "signed URLs need credentials that can sign, not anonymous ones".into(),
                        ));
                    }
                    (_, Some(json)) => credentials::service_account::Builder::new(json)
                        .build_signer()
                        .map_err(|e| config("service account key", &e))?,
                    (_, None) => credentials::Builder::default()
                        .build_signer()
                        .map_err(|e| config("application default credentials", &e))?,
                };
                Urls::Signed {
                    signer,
                    ttl: *ttl,
                    endpoint: settings.endpoint.clone(),
                }
            }
        };
        let mut objects = Storage::builder().with_credentials(credentials.clone());
        if let Some(endpoint) = &settings.endpoint {
            objects = objects.with_endpoint(endpoint);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| config("HTTP client", &e))?;
        let prefix = settings.prefix.trim_matches('/');
        Ok(Self {
            objects: Box::pin(objects.build())
                .await
                .map_err(|e| config("storage client", &e))?,
            http,
            credentials,
            endpoint: settings
                .endpoint
                .as_deref()
                .unwrap_or(GOOGLE_ENDPOINT)
                .trim_end_matches('/')
                .to_owned(),
            bucket_path: format!("projects/_/buckets/{}", settings.bucket),
            bucket: settings.bucket,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            urls,
        })
    }

    fn object(&self, key: &str) -> Result<String, StorageError> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }
}

fn is_not_found(e: &google_cloud_storage::Error) -> bool {
    e.http_status_code() == Some(404) || e.status().is_some_and(|s| s.code == Code::NotFound)
}

impl Gcs {
    /// `DELETE /storage/v1/b/<bucket>/o/<object>`; gone already is success.
    async fn delete_object(&self, object: &str) -> Result<(), StorageError> {
        let mut url = reqwest::Url::parse(&self.endpoint)
            .map_err(|e| StorageError::Config(format!("endpoint {:?}: {e}", self.endpoint)))?;
        url.path_segments_mut()
            .map_err(|()| StorageError::Config(format!("endpoint {:?}", self.endpoint)))?
            .extend(["storage", "v1", "b", &self.bucket, "o", object]);
        let headers = match self.credentials.headers(http::Extensions::new()).await {
            Ok(CacheableResource::New { data, .. }) => data,
            Ok(CacheableResource::NotModified) => http::HeaderMap::new(),
            Err(e) => return Err(StorageError::Remote(format!("credentials: {e}"))),
        };
        let response = self
            .http
            .delete(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| StorageError::Remote(format!("delete {object}: {e}")))?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            let body = response.text().await.unwrap_or_default();
            Err(StorageError::Remote(format!(
                "delete {object}: {status}: {}",
                body.chars().take(300).collect::<String>()
            )))
        }
    }
}

impl ObjectStore for Gcs {
    async fn put(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StorageError> {
        let object = self.object(key)?;
        let upload = self
            .objects
            .write_object(&self.bucket_path, object, bytes::Bytes::from(bytes))
            .set_content_type(content_type)
            .set_cache_control(CACHE_CONTROL)
            .send_buffered();
        // The client's futures are large (tens of KiB in debug builds): on the heap, not on the
        // stack of whichever task awaits them.
        Box::pin(upload).await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let object = self.object(key)?;
        self.delete_object(&object).await
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        let object = self.object(key)?;
        // The first bytes are enough to know; the rest of the download is dropped.
        let read = self
            .objects
            .read_object(&self.bucket_path, object)
            .set_read_range(ReadRange::head(1))
            .send();
        match Box::pin(read).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn url(&self, key: &str) -> Result<String, StorageError> {
        let object = self.object(key)?;
        match &self.urls {
            Urls::Public(base) => Ok(format!("{base}/{object}")),
            Urls::Signed {
                signer,
                ttl,
                endpoint,
            } => {
                let mut builder =
                    SignedUrlBuilder::for_object(&self.bucket_path, object).with_expiration(*ttl);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint);
                }
                Ok(Box::pin(builder.sign_with(signer)).await?)
            }
        }
    }
}
