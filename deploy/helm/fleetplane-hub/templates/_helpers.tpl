{{- define "hub.labels" -}}
app.kubernetes.io/name: fleetplane-hub
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}
{{- define "hub.selector" -}}
app.kubernetes.io/name: fleetplane-hub
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{- /* The Secret and key holding the database URL: CloudNativePG's <cluster>-app Secret
       (key uri) or the one given for an external Postgres. Exactly one must be chosen. */ -}}
{{- define "hub.dbSecret" -}}
{{- $pg := .Values.postgresql -}}
{{- if and $pg.cloudnativepg.enabled $pg.external.secretName -}}
{{- fail "postgresql: set either postgresql.external.secretName or postgresql.cloudnativepg.enabled=true, not both" -}}
{{- else if $pg.cloudnativepg.enabled -}}
{{- printf "%s-app" $pg.cloudnativepg.name -}}
{{- else if $pg.external.secretName -}}
{{- $pg.external.secretName -}}
{{- else -}}
{{- fail "postgresql: no database. Set postgresql.external.secretName to a Secret holding the Postgres URL (kubectl create secret generic fleetplane-db --from-literal=uri=postgresql://...), or postgresql.cloudnativepg.enabled=true" -}}
{{- end -}}
{{- end -}}
{{- define "hub.dbKey" -}}
{{- if .Values.postgresql.cloudnativepg.enabled -}}uri{{- else -}}{{ .Values.postgresql.external.secretKey | default "uri" }}{{- end -}}
{{- end -}}

{{- /* The kubernetes.io/tls Secret the hub serves with. */ -}}
{{- define "hub.tlsSecret" -}}
{{- $tls := .Values.tls -}}
{{- if and $tls.certManager.enabled $tls.secretName -}}
{{- fail "tls: set either tls.secretName or tls.certManager.enabled=true, not both" -}}
{{- else if $tls.certManager.enabled -}}
fleetplane-hub-tls
{{- else if $tls.secretName -}}
{{- $tls.secretName -}}
{{- else -}}
{{- fail "tls: no serving certificate. Set tls.secretName to a kubernetes.io/tls Secret (kubectl create secret tls fleetplane-hub-tls --cert=... --key=...), or tls.certManager.enabled=true with tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- end -}}

{{- /* The Secret the bootstrap Job stores the metrics token in (the ServiceMonitor reads it):
       never the admin token's Secret, so read access for scraping grants no admin. */ -}}
{{- define "hub.metricsSecret" -}}
{{- printf "%s-metrics" .Values.tokenBootstrap.secretName -}}
{{- end -}}

{{- /* Environment shared by the hub pods and the Jobs: the database URL and the settings. */ -}}
{{- define "hub.env" -}}
- name: FLEETPLANE_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "hub.dbSecret" . | quote }}, key: {{ include "hub.dbKey" . | quote }}}}
- name: FLEETPLANE_DATA_DIR
  value: /var/lib/fleetplane
- name: HOME
  value: /tmp
{{- /* The data dir is an emptyDir: a local admin token would be lost with the pod, yet stay valid. */}}
- name: FLEETPLANE_ADMIN_KUBECONFIG
  value: "false"
{{- range $key, $value := .Values.settings }}
{{- /* Helm reads whole numbers as float64: 3145728 would print as 3.145728e+06. */}}
{{- $text := toString $value }}
{{- if and (kindIs "float64" $value) (eq (float64 (int64 $value)) $value) }}{{ $text = int64 $value | toString }}{{ end }}
- name: FLEETPLANE_{{ $key | snakecase | upper }}
  value: {{ $text | quote }}
{{- end }}
{{- end -}}

{{- define "hub.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile: {type: RuntimeDefault}
{{- end -}}
{{- define "hub.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{- /* imagePullSecrets, nodeSelector and tolerations, for the hub pods and the Jobs alike
       (affinity too, for the Jobs: the hub pods default to spreading over nodes). */ -}}
{{- define "hub.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
{{- define "hub.jobAffinity" -}}
{{- with .Values.affinity }}
affinity: {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
