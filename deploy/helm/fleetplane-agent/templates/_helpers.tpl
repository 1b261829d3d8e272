{{- define "agent.name" -}}fleetplane-agent{{- end -}}
{{- define "agent.labels" -}}
app.kubernetes.io/name: fleetplane-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}
