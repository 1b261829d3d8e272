{{- define "agent.name" -}}fleetplane-agent{{- end -}}
{{- define "agent.labels" -}}
app.kubernetes.io/name: fleetplane-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- /* "true" when the agent may create namespaces: config.delivery.createNamespaces, which
       defaults to true in the agent when unset. One knob decides both the agent's behaviour
       and its RBAC rule, so they cannot disagree. */ -}}
{{- define "agent.createNamespaces" -}}
{{- $delivery := (.Values.config | default dict).delivery | default dict -}}
{{- if or (not (hasKey $delivery "createNamespaces")) $delivery.createNamespaces -}}true{{- end -}}
{{- end -}}
